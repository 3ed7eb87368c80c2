"""A systemd lab host with a stand-in `magic-master` unit, for the systemd/journald/sqlite kinds.

Host slot 5 of the kit's selftest system (198.18.15.22): slot 0 is the kit's own systemd
smoke test, 32 and up the fleet. The stand-in is a shell loop that runs whatever script a
test drops into /run/mm-emit (echo an ERROR line, log a multi-line message), so a test makes
the unit log on demand; its PATH is its own (`Environment=PATH=/opt/mm/bin:...`).
"""

from __future__ import annotations

import base64
import shlex

from lab.addresses import SELFTEST_SYSTEM
from lab.core import wait_until
from lab.systemd_host import SystemdHost, SystemdImage

UNIT = "magic-master"
UNIT_PATH = "/opt/mm/bin:/usr/bin:/bin"
DAEMON = """#!/bin/sh
echo "magic-master started"
while :; do
  for f in /run/mm-emit/*.sh; do
    [ -f "$f" ] && { sh "$f"; rm -f "$f"; }
  done
  sleep 0.1
done
"""
SERVICE = f"""[Unit]
Description=stand-in for Magic Master
StartLimitIntervalSec=0

[Service]
Environment=PATH={UNIT_PATH} MAGIC_MASTER_DB=/var/lib/magic-master/magic.db
ExecStartPre=/bin/mkdir -p /run/mm-emit
ExecStart=/usr/local/bin/mm-daemon
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""
CRASHING = """[Unit]
Description=a unit that exits at once, restarted for ever
StartLimitIntervalSec=0

[Service]
ExecStart=/bin/sh -c 'echo "ERROR crashed"; exit 3'
Restart=always
RestartSec=500ms
"""


def magic_master_host() -> SystemdHost:
    return SystemdHost(
        system=SELFTEST_SYSTEM,
        netns="rbs-selftest-mm",
        machine_if="rbs-selftmm0",
        slot=5,
        name="lab-selftest-magic-master",
        image=SystemdImage(packages=("sqlite3",)),
    )


def put_file(host: SystemdHost, path: str, data: bytes, mode: str = "644") -> None:
    """Written beside and renamed over: the daemon never runs half a script, and a shell running
    the old file keeps reading the old one."""
    encoded = base64.b64encode(data).decode()
    quoted, partial = shlex.quote(path), shlex.quote(f"{path}.partial")
    host.ssh(
        f"mkdir -p -- $(dirname {quoted}) && echo {encoded} | base64 -d > {partial} "
        f"&& chmod {mode} {partial} && mv -f {partial} {quoted}"
    )


def install(host: SystemdHost) -> None:
    """The stand-in unit (enabled, started) and the crashing one (installed, stopped)."""
    put_file(host, "/usr/local/bin/mm-daemon", DAEMON.encode(), "755")
    put_file(host, f"/etc/systemd/system/{UNIT}.service", SERVICE.encode())
    put_file(host, "/etc/systemd/system/mm-crash.service", CRASHING.encode())
    put_file(host, "/opt/mm/bin/ffmpeg", b"#!/bin/sh\necho ffmpeg version stand-in\n", "755")
    host.ssh(f"systemctl daemon-reload && systemctl enable --now {UNIT}.service")


def emit(host: SystemdHost, script: str) -> None:
    """Have the unit itself run `script` (its output goes to its journal), and wait until it did."""
    name = f"/run/mm-emit/{abs(hash(script))}.sh"
    put_file(host, name, script.encode())
    wait_until(lambda: _gone(host, name), timeout=10, what=f"the unit running {name}", interval=0.1)


def _gone(host: SystemdHost, name: str) -> bool:
    return host.ssh(f"test -e {name} && echo here || echo gone", timeout=10).strip() == "gone"
