#!/bin/sh
# runbook-lab stand-in for project/scripts/release_master.sh: the runbook names the script, not
# what it does; the lab's release is `python -m lab heal hexenvpn-xray`.
echo "runbook-lab: release_master.sh is a stand-in; use python -m lab heal hexenvpn-xray" >&2
exit 2
