"""The hexenvpn-xray runbook against its lab: a master and three replicas, results per host.

Each fault of `python -m lab faults hexenvpn-xray` is injected, the daily checklist runs as a
user runs it, and the set of failing tests must be exactly the fault's expected set, named
`check-id@host`: the right replica, and every other host's checks still green. The generic
tests come from selftests/lab_harness.py; this module is the VPN's data.
"""

from __future__ import annotations

import lab_fingerprint as fingerprint
from lab_harness import REPO, LabChecklistTests

SYSTEM = "hexenvpn-xray"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"

# fault -> {test id: pattern its message must match}: the host, found value and expectation.
MESSAGES: dict[str, dict[str, str]] = {
    "duplicate-user-case": {
        "xray-config-unique-users@vpn-master": r"'test1' and 'Test1'.*User Test1 already exists",
        "xray-restarts@vpn-master": r"restarted \d+ times",
        "xray-user-exists-error@vpn-master": r"\d+ lines? of hexenvpn-xray's logs match "
        + r"'User \.\+ already exists' since its start at ",
        "replica-in-sync@vpn-replica-2": r"vpn-replica-2 differs from vpn-master: missing Test1",
    },
    "broken-config-json": {
        "xray-config-json@vpn-master": r"not valid JSON: .* \(line \d+, column \d+\)",
        "replica-in-sync@vpn-replica-1": r"cannot compare with vpn-master: .*not valid JSON",
    },
    "config-test-failing": {"xray-config-test@vpn-master": r"exit 23|exited 23|decryption"},
    "user-missing-on-replica": {"replica-in-sync@vpn-replica-2": r"differs from vpn-master: missing bob$"},
    "extra-user-on-replica": {"replica-in-sync@vpn-replica-3": r"differs from vpn-master: extra mallory$"},
    "replica-unreachable": {"reachable-vpn-replica-1": r"unreachable|timed out|No route"},
    "replica-restart-loop": {
        "replica-xray-running@vpn-replica-2": r"hexenvpn-xray is (restarting|exited)",
        "vless-probe@vpn-replica-2": r"through 198\.18\.4\.10:443",
    },
    "vless-tool-missing": {"vless-tools@vpn-master": r"exit 1 != 0"},
    "healthcheck-script-missing": {
        "healthcheck-script@vpn-master": r"healthcheck_master_replicas\.sh does not exist"
    },
    "log-rotation-missing": {
        "bot-log-rotation@vpn-master": r"logs with json-file no options != json-file max-file=3 max-size=10m"
    },
    "wrong-restart-policy": {"xray-restart-policy@vpn-master": r"restart policy no != unless-stopped"},
    "docker-not-enabled": {"replica-docker-enabled@vpn-replica-1": r"disabled"},
    "probe-failing": {
        "xray-port@vpn-replica-3": r"cannot connect to 198\.18\.4\.14:443",
        "vless-probe@vpn-replica-3": r"through 198\.18\.4\.14:443",
    },
}


class TestVpnLab(LabChecklistTests):
    system = SYSTEM
    lab_file = LAB_FILE
    messages = MESSAGES
    min_passed = 30

    def fingerprint(self) -> dict[str, str]:
        from lab.vpn import system as vpn

        facts: dict[str, str] = {}
        for host in vpn.HOSTS:
            facts |= fingerprint.files(host.hostdir / "opt")
            facts |= fingerprint.files(host.root)
            facts |= fingerprint.containers(host.dockerd.url)
            wants = vpn.systemd_dir(host) / vpn.DOCKER_UNIT_LINK
            facts[f"link:{wants}"] = str(wants.readlink()) if wants.is_symlink() else "missing"
        return facts
