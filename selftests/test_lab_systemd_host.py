"""Smoke test of the lab kit's systemd host: PID 1 is systemd, reached over the lab's SSH.

Brings one up from whatever the cache holds (debootstrap on a machine that never built the
root), starts and enables a unit, reads its journal, and tears the host down again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab.addresses import SELFTEST_SYSTEM
from lab.core import wait_until
from lab.network import link_exists
from lab.systemd_host import SystemdHost

UNIT = """[Unit]
Description=runbook-lab smoke unit

[Service]
ExecStart=/bin/sh -c 'echo hello from the smoke unit; exec sleep infinity'

[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="module")
def host() -> Iterator[SystemdHost]:
    host = SystemdHost(
        system=SELFTEST_SYSTEM, netns="rbs-selftest", machine_if="rbs-selftest0", name="lab-selftest-systemd"
    )
    started = time.monotonic()
    host.up()
    print(f"\nsystemd host up in {time.monotonic() - started:.1f} s")
    try:
        yield host
    finally:
        host.down()
        host.purge()


def test_pid_1_is_systemd_and_the_system_runs(host: SystemdHost) -> None:
    assert host.ssh("cat /proc/1/comm").strip() == "systemd"
    state = host.ssh("systemctl is-system-running --wait", check=False).strip()
    assert state in {"running", "degraded"}, host.ssh("systemctl --failed --no-pager", check=False)
    assert host.ssh("systemctl is-active systemd-journald ssh").split() == ["active", "active"]


def test_a_unit_is_enabled_started_and_journaled(host: SystemdHost) -> None:
    host.ssh(f"cat > /etc/systemd/system/lab-smoke.service <<'UNIT'\n{UNIT}UNIT\nsystemctl daemon-reload")
    host.ssh("systemctl enable --now lab-smoke.service")
    assert host.ssh("systemctl is-enabled lab-smoke.service").strip() == "enabled"
    assert host.ssh("systemctl is-active lab-smoke.service").strip() == "active"
    wait_until(
        lambda: "hello from the smoke unit" in host.ssh("journalctl -u lab-smoke.service --no-pager"),
        timeout=10,
        what="the smoke unit's line in the journal",
    )


def _started_at(host: SystemdHost) -> str:
    with host.carrier.session() as client:
        container = host.container(client)
        assert container is not None
        return str(container.attrs["State"]["StartedAt"])


def test_up_again_is_quick_and_keeps_the_host(host: SystemdHost) -> None:
    """Quick because it keeps the host: the same container run, not a new boot (its time is not
    asserted; at load 14 the status probes themselves answered late once)."""
    started_at = _started_at(host)
    host.up()
    assert _started_at(host) == started_at
    wait_until(lambda: all(line.ok for line in host.components()), timeout=60, what="the host's status")


def test_down_then_up_boots_it_again_with_its_enabled_unit(host: SystemdHost) -> None:
    host.down()
    assert not link_exists(host.machine_if)
    assert not host.ok()
    host.up()
    assert host.ssh("systemctl is-system-running --wait", check=False).strip() in {"running", "degraded"}
    assert host.ssh("systemctl is-active lab-smoke.service").strip() == "active"
