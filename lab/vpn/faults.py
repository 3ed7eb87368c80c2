"""The failures of the hexenvpn-xray runbook, each made the way it happens in production.

Config faults edit a host's real config.json and restart its real xray (v2ray 4.34), which
then fails or serves exactly what the file says; a duplicate user by case makes it exit 23
with `User Test1 already exists`, and docker's `unless-stopped` turns that into the restart
loop of runbook section 2. `recreate` names `<host>/<container>` for heal.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from lab import containers
from lab.core import Fault, fault, run, spawn_daemon, wait_until
from lab.host import Host
from lab.network import netns_path
from lab.vpn import system as vpn
from lab.vpn import xray

MASTER, (REPLICA_1, REPLICA_2, REPLICA_3) = vpn.MASTER, vpn.REPLICAS


def _edit_config(host: Host, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    path = vpn.config_path(host)
    xray.write(path, change(xray.read(path)))


def _restart_xray(host: Host, *, serves: bool = False) -> None:
    """Restart xray; `serves`: the fault leaves xray working, so wait until it serves again, as
    heal does after `up` (make test once met 'Server disconnected' in user-missing-on-replica's
    VLESS probe, a moment of the restart, not the fault)."""
    with host.dockerd.session() as client:
        containers.existing_container(client, vpn.XRAY).restart(timeout=2)
    if serves:
        wait_until(lambda: vpn.xray_answers(host), timeout=30, what=f"{vpn.XRAY} on {host.label}:443")
        wait_until(lambda: vpn.probe_target_ok(host), timeout=30, what=f"the probe target on {host.label}")


def _wait_looping(host: Host) -> None:
    """Until docker has restarted the crashing xray at least twice: the loop is observable."""
    containers.wait_restarted(host.dockerd, vpn.XRAY, 2)


def _recreate(host: Host, spec: containers.Spec) -> None:
    with host.dockerd.session() as client:
        containers.remove_container(client, spec.name)
        containers.create_container(client, spec)


# ---- the injections -------------------------------------------------------------------
def duplicate_user_by_case() -> None:
    """`Test1` added by hand beside `test1` (a second id): xray refuses to start."""
    twin = {"id": str(uuid.uuid4()), "email": "Test1", "level": 0}
    _edit_config(
        MASTER, lambda doc: xray.with_clients(doc, [*doc["inbounds"][0]["settings"]["clients"], twin])
    )
    _restart_xray(MASTER)
    _wait_looping(MASTER)


def broken_json() -> None:
    """A hand edit left config.json cut off mid-object; xray restarts into the broken file."""
    path = vpn.config_path(MASTER)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    _restart_xray(MASTER)
    _wait_looping(MASTER)


def config_test_failing() -> None:
    """Valid JSON that xray rejects (VLESS requires decryption none), written but not yet applied."""

    def change(document: dict[str, Any]) -> dict[str, Any]:
        document["inbounds"][0]["settings"]["decryption"] = "aes-128-gcm"
        return document

    _edit_config(MASTER, change)


def user_missing_on_replica() -> None:
    """replica-2 missed a sync: `bob` is on the master but not there."""
    _edit_config(
        REPLICA_2,
        lambda doc: xray.with_clients(doc, [xray.client(name) for name in xray.USERS if name != "bob"]),
    )
    _restart_xray(REPLICA_2, serves=True)


def extra_user_on_replica() -> None:
    """A user added on replica-3 by hand, never on the master."""
    extra = [*(xray.client(name) for name in xray.USERS), xray.client("mallory")]
    _edit_config(REPLICA_3, lambda doc: xray.with_clients(doc, extra))
    _restart_xray(REPLICA_3, serves=True)


def replica_unreachable() -> None:
    """replica-1 drops off the network (its link down): SSH and :443 time out."""
    run(["ip", "-n", REPLICA_1.netns, "link", "set", REPLICA_1.link.host_if, "down"])


def replica_restart_loop() -> None:
    """Something else took :443 on replica-2; its xray exits at start and docker restarts it."""
    with REPLICA_2.dockerd.session() as client:
        containers.stop_and_wait(client, vpn.XRAY)  # frees :443 for the squatter
    listener = "import socket,time; s=socket.socket(); s.bind(('0.0.0.0', 443)); s.listen(); time.sleep(1e5)"
    argv = ["nsenter", f"--net={netns_path(REPLICA_2.netns)}", "/usr/bin/python3", "-c", listener]
    vpn.squatter_pidfile(REPLICA_2).write_text(f"{spawn_daemon(argv, REPLICA_2.hostdir / 'squatter.log')}\n")
    wait_until(lambda: vpn.xray_answers(REPLICA_2), timeout=10, what="the squatter on replica-2's :443")
    with REPLICA_2.dockerd.session() as client:
        containers.existing_container(client, vpn.XRAY).start()
    _wait_looping(REPLICA_2)


def vless_tool_missing() -> None:
    """A bot redeployed without vless-del-user: users can be added but no longer removed."""
    (vpn.opt(MASTER) / "bot" / "sbin" / "vless-del-user").unlink()


def healthcheck_script_missing() -> None:
    """project/scripts/healthcheck_master_replicas.sh lost in a redeploy of /opt/vpn_vds/project."""
    (vpn.opt(MASTER) / "project" / "scripts" / "healthcheck_master_replicas.sh").unlink()


def log_rotation_missing() -> None:
    """hexenvpn-bot recreated from a compose file without `logging:`: json-file, unrotated."""
    _recreate(MASTER, dataclasses.replace(vpn.bot_spec(), log_options=None))


def wrong_restart_policy() -> None:
    """hexenvpn-xray recreated with `restart: "no"`: after a reboot it stays down."""
    _recreate(MASTER, dataclasses.replace(vpn.xray_spec(MASTER), restart_policy="no"))


def docker_not_enabled() -> None:
    """`systemctl disable docker` on replica-1: its wants link gone, docker won't start at boot."""
    (vpn.systemd_dir(REPLICA_1) / vpn.DOCKER_UNIT_LINK).unlink()


def probe_failing() -> None:
    """replica-3's inbound stopped (docker stop hexenvpn-xray): nobody gets through it."""
    with REPLICA_3.dockerd.session() as client:
        containers.stop_and_wait(client, vpn.XRAY)


# ---- the table ------------------------------------------------------------------------
def on(host: Host, *check_ids: str) -> set[str]:
    """Test ids of checks run per host: `check-id@host`."""
    return {f"{check_id}@{vpn.HOST_NAMES[host]}" for check_id in check_ids}


REPLICAS_OUT_OF_SYNC = {
    *on(REPLICA_1, "replica-in-sync"),
    *on(REPLICA_2, "replica-in-sync"),
    *on(REPLICA_3, "replica-in-sync"),
}
MASTER_LOOPING = on(MASTER, "xray-running", "xray-restarts", "xray-config-test")

FAULTS: list[Fault] = [
    fault(
        "duplicate-user-case",
        "`Test1` added by hand beside `test1`: xray exits 23 (User Test1 already exists), restart loop",
        fails={
            *MASTER_LOOPING,
            *on(MASTER, "xray-config-unique-users", "xray-user-exists-error"),
            *REPLICAS_OUT_OF_SYNC,
        },
        inject=duplicate_user_by_case,
        recreate={"vpn-master/hexenvpn-xray"},
    ),
    fault(
        "broken-config-json",
        "the master's config.json cut off mid-object by a hand edit: xray cannot start",
        fails={
            *MASTER_LOOPING,
            *on(MASTER, "xray-config-json", "xray-config-unique-users", "user-present"),
            *REPLICAS_OUT_OF_SYNC,
        },
        inject=broken_json,
        recreate={"vpn-master/hexenvpn-xray"},
    ),
    fault(
        "config-test-failing",
        "config.json changed to something xray rejects (decryption must be none), not applied yet",
        fails=on(MASTER, "xray-config-test"),
        inject=config_test_failing,
    ),
    fault(
        "user-missing-on-replica",
        "replica-2 missed a sync: bob is on the master only",
        fails=on(REPLICA_2, "replica-in-sync"),
        inject=user_missing_on_replica,
        recreate={"vpn-replica-2/hexenvpn-xray"},
    ),
    fault(
        "extra-user-on-replica",
        "mallory added on replica-3 by hand, never on the master",
        fails=on(REPLICA_3, "replica-in-sync"),
        inject=extra_user_on_replica,
        recreate={"vpn-replica-3/hexenvpn-xray"},
    ),
    fault(
        "replica-unreachable",
        "replica-1 off the network: one failure for it, every other host's checks still run",
        fails={"reachable-vpn-replica-1"},
        inject=replica_unreachable,
    ),
    fault(
        "replica-restart-loop",
        "something else holds :443 on replica-2: its xray exits at start, docker restarts it",
        fails=on(REPLICA_2, "replica-xray-running", "replica-xray-restarts", "vless-probe"),
        inject=replica_restart_loop,
        recreate={"vpn-replica-2/hexenvpn-xray"},
    ),
    fault(
        "vless-tool-missing",
        "the bot redeployed without vless-del-user: users can no longer be removed the runbook's way",
        fails=on(MASTER, "vless-tools"),
        inject=vless_tool_missing,
    ),
    fault(
        "healthcheck-script-missing",
        "project/scripts/healthcheck_master_replicas.sh gone from the master",
        fails=on(MASTER, "healthcheck-script"),
        inject=healthcheck_script_missing,
    ),
    fault(
        "log-rotation-missing",
        "hexenvpn-bot recreated without `logging:`: json-file with no max-size/max-file",
        fails=on(MASTER, "bot-log-rotation"),
        inject=log_rotation_missing,
        recreate={"vpn-master/hexenvpn-bot"},
    ),
    fault(
        "wrong-restart-policy",
        "hexenvpn-xray recreated with restart: no (it stays down after a reboot)",
        fails=on(MASTER, "xray-restart-policy"),
        inject=wrong_restart_policy,
        recreate={"vpn-master/hexenvpn-xray"},
    ),
    fault(
        "docker-not-enabled",
        "systemctl disable docker on replica-1: its containers won't come back after a reboot",
        fails=on(REPLICA_1, "replica-docker-enabled"),
        inject=docker_not_enabled,
    ),
    fault(
        "probe-failing",
        "replica-3's inbound stopped (docker stop hexenvpn-xray): the user cannot get through it",
        fails=on(REPLICA_3, "replica-xray-running", "xray-port", "vless-probe"),
        inject=probe_failing,
        recreate={"vpn-replica-3/hexenvpn-xray"},
    ),
]
