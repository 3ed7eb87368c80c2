#!/bin/sh
# runbook-lab: the `xray` of the hexenvpn lab, run by Debian's v2ray 4.34 (same config.json,
# VLESS). xray's `run` is what v2ray does without a subcommand; -test and -config FILE mean the
# same to both. Installed by `python -m lab up hexenvpn-xray` as /usr/local/bin/xray.
if [ "$1" = run ]; then shift; fi
exec /usr/bin/v2ray "$@"
