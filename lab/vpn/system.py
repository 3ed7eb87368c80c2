"""The VPN of the hexenvpn-xray runbook, rebuilt on this machine: one master, three replicas.

Each server is a lab host (network namespace, own dockerd, sshd, /root, /opt and
/etc/systemd/system). Every host runs `hexenvpn-xray` (`xray run -config
/usr/local/etc/xray/config.json`, where `xray` is a wrapper running Debian's v2ray 4.34, with a
real VLESS inbound on :443, host network, json-file logs rotated at 10m x 3, restart
unless-stopped); the master also runs `hexenvpn-bot`, whose vless-add-user/vless-del-user edit
the master's config.json and sync it to the replicas, and has the runbook's
/opt/vpn_vds/project (compose file, scripts/healthcheck_master_replicas.sh and
scripts/release_master.sh, stand-ins). Each replica serves a probe file on its own loopback,
which the suite's end-to-end probe fetches through that replica's VLESS inbound.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lab.containers import (
    ComposeProject,
    Spec,
    container_components,
    ensure_hostroot_image,
    exec_output,
    reconcile,
)
from lab.core import Component, Fault, read_pidfile, require, spawn_daemon, stop_pid, wait_until, write_file
from lab.host import Host
from lab.network import netns_path, wait_tcp
from lab.system import FaultBook, HealPlan, LabSystem
from lab.vpn import xray

NAME = "hexenvpn-xray"
BOOK = FaultBook(NAME)
HERE = Path(__file__).resolve().parent
PRIVATE_BINDS = (
    ("root", "/root"),
    ("crontabs", "/var/spool/cron/crontabs"),
    ("log", "/var/log"),
    ("opt", "/opt"),
    ("systemd-system", "/etc/systemd/system"),
)
MASTER = Host(
    system=NAME, netns="rbs-vpn", machine_if="rbs-vpn0", name="hexenvpn-master", private_binds=PRIVATE_BINDS
)
REPLICAS = tuple(
    Host(
        system=NAME,
        netns=f"rbs-vpn-r{number}",
        machine_if=f"rbs-vpnr{number}",
        slot=number,
        name=f"hexenvpn-replica-{number}",
        private_binds=PRIVATE_BINDS,
    )
    for number in (1, 2, 3)
)
HOSTS = (MASTER, *REPLICAS)
# The suite's host names (systems/lab/hexenvpn-xray.yml) for each lab host.
HOST_NAMES = {MASTER: "vpn-master", **{replica: f"vpn-replica-{n}" for n, replica in enumerate(REPLICAS, 1)}}

XRAY, BOT = "hexenvpn-xray", "hexenvpn-bot"
PROJECT_DIR = "/opt/vpn_vds/project"
MASTER_PROJECT = ComposeProject(
    name="project", working_dir=PROJECT_DIR, config_file="docker-compose.master-full.yml"
)
REPLICA_PROJECT = ComposeProject(
    name="project", working_dir=PROJECT_DIR, config_file="docker-compose.replica.yml"
)
LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}
DOCKER_UNIT_LINK = Path("multi-user.target.wants/docker.service")
DOCKER_UNIT = "/lib/systemd/system/docker.service"
XRAY_MOUNTPOINT = Path("/usr/local/etc/xray")  # in the machine's /usr, bound read-only into containers
# The runbook's `xray` (run -test): on the machine's /usr, which every lab host and container shares.
XRAY_WRAPPER = Path("/usr/local/bin/xray")
XRAY_CONFIG = f"{XRAY_MOUNTPOINT}/config.json"
MASTER_SCRIPTS = ("healthcheck_master_replicas.sh", "release_master.sh")
VPN_NEEDS = {"/usr/bin/v2ray": "v2ray", "/usr/bin/docker": "docker.io", "/usr/bin/python3": "python3"}


# ---- paths (machine side) -------------------------------------------------------------
def opt(host: Host) -> Path:
    return host.hostdir / "opt" / "vpn_vds"


def config_path(host: Host) -> Path:
    """The host's /opt/vpn_vds/xray/config.json, bound into its xray at /usr/local/etc/xray."""
    return opt(host) / "xray" / "config.json"


def systemd_dir(host: Host) -> Path:
    """The host's /etc/systemd/system (its own copy, so enabling docker is per host)."""
    return host.hostdir / "systemd-system"


def probe_dir(host: Host) -> Path:
    return host.hostdir / "probe"


def probe_pidfile(host: Host) -> Path:
    return host.rundir / "probe.pid"


def squatter_pidfile(host: Host) -> Path:
    """A process holding :443 (the replica-restart-loop fault), for heal to stop."""
    return host.rundir / "squatter.pid"


# ---- files ----------------------------------------------------------------------------
def write_host_files(host: Host, *, strict: bool) -> bool:
    """Lay the host's files; True when its config.json had to be put back (xray must reload)."""
    master = host is MASTER
    project = opt(host) / "project"
    compose = "docker-compose.master-full.yml" if master else "docker-compose.replica.yml"
    write_file(project / compose, (HERE / compose).read_text())
    config_changed = False
    healthy = json.dumps(xray.healthy_config(), indent=2) + "\n"
    current = config_path(host).read_text() if config_path(host).exists() else None
    if current is None or (strict and current != healthy):
        xray.write(config_path(host), xray.healthy_config())
        config_changed = current is not None
    wants = systemd_dir(host) / DOCKER_UNIT_LINK
    if strict or not wants.is_symlink():
        wants.parent.mkdir(parents=True, exist_ok=True)
        wants.unlink(missing_ok=True)
        wants.symlink_to(DOCKER_UNIT)
    if master:
        for name in MASTER_SCRIPTS:
            write_file(project / "scripts" / name, (HERE / "scripts" / name).read_text(), 0o755)
        bot = opt(host) / "bot"
        for name in ("bot.py", "vless_users.py"):
            write_file(bot / name, (HERE / "bot" / name).read_text())
        for name in ("vless-add-user", "vless-del-user"):
            write_file(bot / "sbin" / name, (HERE / "bot" / name).read_text(), 0o755)
    else:
        write_file(probe_dir(host) / xray.PROBE_PATH.lstrip("/"), xray.PROBE_BODY)
    return config_changed


# ---- containers -----------------------------------------------------------------------
def xray_spec(host: Host) -> Spec:
    return Spec(
        name=XRAY,
        service="xray",
        project=MASTER_PROJECT if host is MASTER else REPLICA_PROJECT,
        network="host",
        command=["xray", "run", "-config", XRAY_CONFIG],
        binds=["/usr:/usr:ro", f"{config_path(host).parent}:{XRAY_MOUNTPOINT}:ro"],
        mem_limit="256m",
        log_options=LOG_OPTIONS,
        content=json.dumps(xray.healthy_config(), sort_keys=True) + (HERE / "xray-wrapper.sh").read_text(),
    )


def bot_spec() -> Spec:
    bot = opt(MASTER) / "bot"
    replicas = []
    for replica in REPLICAS:
        replicas += [
            f"{config_path(replica).parent}:/replicas/{replica.label}/xray:rw",
            f"{replica.dockerd.sock}:/replicas/{replica.label}/docker.sock",
        ]
    return Spec(
        name=BOT,
        service="bot",
        project=MASTER_PROJECT,
        network="host",
        command=["/usr/bin/python3", "-u", "/app/bot.py"],
        binds=[
            "/usr:/usr:ro",
            f"{bot}:/app:ro",
            f"{bot / 'sbin'}:/usr/local/sbin:ro",
            f"{config_path(MASTER).parent}:{XRAY_MOUNTPOINT}:rw",
            f"{MASTER.dockerd.sock}:/var/run/docker.sock",
            *replicas,
        ],
        mem_limit="256m",
        log_options=LOG_OPTIONS,
        working_dir="/app",
        content=(HERE / "bot" / "vless_users.py").read_text() + (HERE / "bot" / "bot.py").read_text(),
    )


def specs(host: Host) -> dict[str, Spec]:
    found = {XRAY: xray_spec(host)}
    if host is MASTER:
        found[BOT] = bot_spec()
    return found


def install_xray_wrapper() -> None:
    """/usr/local/bin/xray running Debian's v2ray, unless a real xray is already there."""
    wrapper = (HERE / "xray-wrapper.sh").read_text()
    if XRAY_WRAPPER.exists() and "runbook-lab" not in XRAY_WRAPPER.read_text(errors="replace")[:200]:
        return  # a real xray: it reads the same config.json
    write_file(XRAY_WRAPPER, wrapper, 0o755)


def xray_answers(host: Host) -> bool:
    """The VLESS inbound accepts TCP on the host's address."""
    try:
        wait_tcp(host.addr, xray.PORT, timeout=0.5)
    except Exception:
        return False
    return True


# ---- the probe target on each replica's loopback --------------------------------------
def start_probe_target(host: Host) -> None:
    if read_pidfile(probe_pidfile(host)):
        return
    argv = [
        "nsenter",
        f"--net={netns_path(host.netns)}",
        "/usr/bin/python3",
        "-m",
        "http.server",
        str(xray.PROBE_PORT),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(probe_dir(host)),
    ]
    host.rundir.mkdir(parents=True, exist_ok=True)
    probe_pidfile(host).write_text(f"{spawn_daemon(argv, host.hostdir / 'probe.log')}\n")


def probe_target_ok(host: Host) -> bool:
    """The probe file answers on the replica's loopback, as its xray's egress will ask for it."""
    url = f"http://127.0.0.1:{xray.PROBE_PORT}{xray.PROBE_PATH}"
    with host.dockerd.session() as client:
        return exec_output(client, XRAY, ["/usr/bin/curl", "-fsS", "--max-time", "2", url])[0] == 0


# ---- the system -----------------------------------------------------------------------
class VpnSystem(LabSystem):
    def __init__(self, faults: Sequence[Fault]) -> None:
        super().__init__(name=NAME, hosts=list(HOSTS), faults=faults)

    def converge(self, *, plan: HealPlan | None) -> None:
        require(VPN_NEEDS)
        strict = plan is not None
        XRAY_MOUNTPOINT.mkdir(parents=True, exist_ok=True)
        install_xray_wrapper()
        reload: set[str] = set()  # labels of hosts whose config.json heal put back
        for host in HOSTS:
            if strict:
                stop_pid(read_pidfile(squatter_pidfile(host)), what="the :443 squatter")
            host.up()
            if write_host_files(host, strict=strict):
                reload.add(host.label)
        for host in HOSTS:
            with host.dockerd.session() as client:
                ensure_hostroot_image(client)
                recreate = recreated_on(host, plan) | ({XRAY} if host.label in reload else set())
                reconcile(client, specs(host).values(), strict=strict, recreate=recreate)
            if host is not MASTER:
                start_probe_target(host)
        for host in HOSTS:
            wait_until(lambda host=host: xray_answers(host), timeout=30, what=f"{XRAY} on {host.label}:443")
        for host in REPLICAS:  # a probe right after `up` must not find the target still starting
            wait_until(
                lambda host=host: probe_target_ok(host), timeout=30, what=f"the probe target on {host.label}"
            )

    def service_components(self) -> list[Component]:
        lines = []
        for host in HOSTS:
            name = HOST_NAMES[host]
            if not host.dockerd.ok():
                lines += [Component(f"{name} container {c}", False, "dockerd down") for c in specs(host)]
                continue
            with host.dockerd.session() as client:
                lines += [
                    Component(f"{name} {line.name}", line.ok, line.detail)
                    for line in container_components(client, tuple(specs(host)))
                ]
            answers = host.link.ok() and xray_answers(host)
            lines.append(Component(f"{name} vless", answers, f"{host.addr}:{xray.PORT}"))
            try:
                users = ", ".join(xray.emails(xray.read(config_path(host))))
                lines.append(Component(f"{name} users", True, users))
            except (OSError, ValueError, KeyError, IndexError) as exc:
                lines.append(Component(f"{name} users", False, f"config.json unreadable: {exc}"))
        return lines


def recreated_on(host: Host, plan: HealPlan | None) -> set[str]:
    """Faults name what heal must recreate as `<host name>/<container>`: one replica's xray only."""
    if plan is None:
        return set()
    return {item.split("/", 1)[1] for item in plan.recreate if item.split("/", 1)[0] == HOST_NAMES[host]}
