"""A lab "server": a network namespace with its own dockerd, sshd, root home and small disk.

The checks of the suite talk to a production host over SSH and Docker; here each host is a
network namespace on this machine reached over a veth pair, with a private mount namespace
for sshd so the host's /root, root crontab and /var/log are its own. Other systems (a VPN
master with replicas, ...) instantiate several of these.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

import docker

from lab.core import (
    LabError,
    lab_dir,
    read_pidfile,
    require,
    run,
    run_dir,
    spawn_daemon,
    stop_pid,
    wait_until,
    write_file,
)

SSH_PORT = 22
# Every lab address lies in the RFC 2544 benchmarking range. An "unreachable" route for all
# of it stays in place after `down`, so a probe of a stopped lab host fails at once instead
# of leaving the machine by the default route.
LAB_RANGE = "198.18.0.0/15"


# What every lab host runs, with the Debian package providing it.
HOST_NEEDS = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "mount": "mount",
    "dockerd": "docker.io",
    "/usr/sbin/sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def fence_lab_range() -> None:
    run(["ip", "route", "replace", "unreachable", LAB_RANGE])


def unfence_lab_range() -> None:
    run(["ip", "route", "del", "unreachable", LAB_RANGE], check=False)


def ssh_dir() -> Path:
    """Client side of the lab's SSH: one key and one ssh_config for every lab host."""
    return lab_dir() / "ssh"


def ssh_config_path() -> Path:
    return ssh_dir() / "config"


@dataclass(frozen=True)
class Host:
    """Topology and lifecycle of one lab server; every method is idempotent."""

    system: str
    netns: str
    host_if: str
    host_addr: str
    addr: str
    prefix: int = 30
    ns_if: str = "eth0"
    disk_size: str = "64m"
    # Pool for networks created without an explicit subnet: stays inside 198.18.0.0/15.
    docker_pool: str = "base=198.18.128.0/20,size=24"
    # Paths of the server's own tree (relative to its host dir) bound over the machine's.
    private_binds: tuple[tuple[str, str], ...] = field(
        default=(("root", "/root"), ("crontabs", "/var/spool/cron/crontabs"), ("log", "/var/log"))
    )

    # ---- paths -------------------------------------------------------------------------
    @property
    def hostdir(self) -> Path:
        return lab_dir() / self.system

    @property
    def rundir(self) -> Path:
        return run_dir() / self.system

    @property
    def docker_sock(self) -> Path:
        return self.rundir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_sock}"

    @property
    def disk(self) -> Path:
        return self.hostdir / "disk"

    @property
    def root(self) -> Path:
        """The server's /root as seen from the machine."""
        return self.hostdir / "root"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    # ---- network namespace -------------------------------------------------------------
    def _link_exists(self, name: str, netns: str | None = None) -> bool:
        argv = ["ip"] + (["-n", netns] if netns else []) + ["link", "show", name]
        return run(argv, check=False).returncode == 0

    def network_ok(self) -> bool:
        return (
            self.netns_path.exists()
            and self._link_exists(self.host_if)
            and self._link_exists(self.ns_if, self.netns)
        )

    def up_network(self) -> None:
        fence_lab_range()
        if not self.netns_path.exists():
            if self._link_exists(self.host_if):  # orphan from a half-removed namespace
                run(["ip", "link", "del", self.host_if])
            run(["ip", "netns", "add", self.netns])
        if not self._link_exists(self.ns_if, self.netns):
            if self._link_exists(self.host_if):
                run(["ip", "link", "del", self.host_if])
            peer = f"{self.host_if}p"
            run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", peer])
            run(["ip", "link", "set", peer, "netns", self.netns])
            run(["ip", "-n", self.netns, "link", "set", peer, "name", self.ns_if])
        run(["ip", "addr", "replace", f"{self.host_addr}/{self.prefix}", "dev", self.host_if])
        run(["ip", "link", "set", self.host_if, "up"])
        ns = ["ip", "-n", self.netns]
        run([*ns, "addr", "replace", f"{self.addr}/{self.prefix}", "dev", self.ns_if])
        run([*ns, "link", "set", self.ns_if, "up"])
        run([*ns, "link", "set", "lo", "up"])

    def down_network(self) -> None:
        if self.netns_path.exists():
            for pid in run(["ip", "netns", "pids", self.netns], check=False).stdout.split():
                stop_pid(int(pid), timeout=5, what="leftover process in namespace")
            run(["ip", "netns", "del", self.netns])
        # Deleting the namespace takes the veth pair with it, but asynchronously.
        if self._link_exists(self.host_if):
            run(["ip", "link", "del", self.host_if], check=False)
        wait_until(lambda: not self._link_exists(self.host_if), timeout=10, what=f"{self.host_if} to go")

    def _in_netns(self, pid: int) -> bool:
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == self.netns_path.stat().st_ino
        except FileNotFoundError:
            return False

    # ---- disk --------------------------------------------------------------------------
    def disk_mounted(self) -> bool:
        return os.path.ismount(self.disk)

    def mount_disk(self) -> None:
        """A small tmpfs of the server's own, so filling it never touches the real disk."""
        if not self.disk_mounted():
            self.disk.mkdir(parents=True, exist_ok=True)
            run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={self.disk_size},mode=0755",
                    f"{self.netns}-disk",
                    str(self.disk),
                ]
            )

    def unmount_disk(self) -> None:
        if self.disk_mounted() and run(["umount", str(self.disk)], check=False).returncode != 0:
            run(["umount", "-l", str(self.disk)])

    # ---- dockerd -----------------------------------------------------------------------
    @property
    def dockerd_pidfile(self) -> Path:
        return self.rundir / "dockerd.pid"

    def dockerd_pid(self) -> int | None:
        pid = read_pidfile(self.dockerd_pidfile)
        return pid if pid and self._in_netns(pid) else None

    def docker(self, timeout: int = 30) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, version="auto", timeout=timeout)

    def docker_ok(self) -> bool:
        if not self.dockerd_pid():
            return False
        try:
            client = self.docker(timeout=5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False

    def start_dockerd(self) -> None:
        """dockerd inside the namespace (nsenter: `ip netns exec` remounts /sys and breaks it)."""
        if self.docker_ok():
            return
        stale = read_pidfile(self.dockerd_pidfile)
        if stale:  # alive but in an old namespace or not answering
            stop_pid(stale, what="dockerd")
        self.rundir.mkdir(parents=True, exist_ok=True)
        (self.hostdir / "docker").mkdir(parents=True, exist_ok=True)
        spawn_daemon(
            [
                "nsenter",
                f"--net={self.netns_path}",
                "dockerd",
                "--iptables=false",
                "--bridge=none",
                "-H",
                self.docker_host,
                "--data-root",
                str(self.hostdir / "docker"),
                "--exec-root",
                str(self.rundir / "exec"),
                "--pidfile",
                str(self.dockerd_pidfile),
                "--default-address-pool",
                self.docker_pool,
                "--shutdown-timeout",
                "5",
            ],
            self.hostdir / "dockerd.log",
        )
        wait_until(self.docker_ok, timeout=60, what=f"dockerd of {self.system}", interval=0.1)

    def stop_dockerd(self) -> None:
        stop_pid(read_pidfile(self.dockerd_pidfile), timeout=40, what="dockerd")
        # dockerd bind-mounts its data root onto itself (and overlays below it) and does
        # not always undo that on exit; left mounted, they block `down --purge`.
        for mount in self.mounts_below(self.hostdir / "docker"):
            run(["umount", "-l", mount], check=False)

    @staticmethod
    def mounts_below(path: Path) -> list[str]:
        """Mount points at or below path, deepest first."""
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
        mounts = {ln.split()[4] for ln in lines}
        below = [m for m in mounts if m == str(path) or m.startswith(f"{path}/")]
        return sorted(below, key=len, reverse=True)

    def restart_dockerd(self) -> None:
        """Restarting dockerd is the only way to drop its in-memory event log."""
        self.stop_dockerd()
        self.start_dockerd()

    # ---- sshd --------------------------------------------------------------------------
    @property
    def sshd_pidfile(self) -> Path:
        return self.rundir / "sshd.pid"

    @property
    def sshd_dir(self) -> Path:
        return self.hostdir / "sshd"

    def sshd_pid(self) -> int | None:
        pid = read_pidfile(self.sshd_pidfile)
        if not pid or not self._in_netns(pid):
            return None
        # sshd must have been started after the disk was mounted, or it cannot see it.
        try:
            mountinfo = Path(f"/proc/{pid}/mountinfo").read_text()
        except FileNotFoundError:
            return None
        return pid if f" {self.disk} " in mountinfo else None

    def _sshd_config(self) -> str:
        return "\n".join(
            [
                "# sshd of the lab server " + self.system + " (generated by runbook-lab)",
                f"ListenAddress {self.addr}:{SSH_PORT}",
                f"HostKey {self.sshd_dir / 'ssh_host_ed25519_key'}",
                "PermitRootLogin prohibit-password",
                f"AuthorizedKeysFile {self.sshd_dir / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                f"PidFile {self.sshd_pidfile}",
                f"SetEnv DOCKER_HOST={self.docker_host}",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )

    def _ensure_ssh_keys(self) -> None:
        client_key = ssh_dir() / "id_ed25519"
        ssh_dir().mkdir(parents=True, exist_ok=True)
        ssh_dir().chmod(0o700)
        if not client_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "runbook-lab", "-f", str(client_key)])
        self.sshd_dir.mkdir(parents=True, exist_ok=True)
        host_key = self.sshd_dir / "ssh_host_ed25519_key"
        if not host_key.exists():
            run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"root@{self.system}",
                    "-f",
                    str(host_key),
                ]
            )
        write_file(self.sshd_dir / "authorized_keys", (client_key.with_suffix(".pub")).read_text())
        write_file(self.sshd_dir / "sshd_config", self._sshd_config())
        self._ensure_client_config(host_key.with_suffix(".pub").read_text().split()[:2])

    def _ensure_client_config(self, host_key: list[str]) -> None:
        """Add this host to the shared ssh_config and pin its key in the lab's known_hosts."""
        known = ssh_dir() / "known_hosts"
        lines = known.read_text().splitlines() if known.exists() else []
        lines = [ln for ln in lines if ln.split(" ", 1)[0] != self.addr]
        lines.append(f"{self.addr} {' '.join(host_key)}")
        write_file(known, "\n".join(lines) + "\n", 0o600)
        cfg = ssh_config_path()
        text = cfg.read_text() if cfg.exists() else "# runbook-lab hosts (generated)\n"
        if f"Host {self.addr}\n" not in text:
            text += "\n".join(
                [
                    "",
                    f"# {self.system}",
                    f"Host {self.addr}",
                    "    User root",
                    f"    IdentityFile {ssh_dir() / 'id_ed25519'}",
                    "    IdentitiesOnly yes",
                    f"    UserKnownHostsFile {known}",
                    "    StrictHostKeyChecking accept-new",
                    "    BatchMode yes",
                    "    ConnectTimeout 5",
                    "",
                ]
            )
            write_file(cfg, text, 0o600)

    def sshd_ok(self) -> bool:
        if not self.sshd_pid():
            return False
        with contextlib.suppress(OSError), socket.create_connection((self.addr, SSH_PORT), 2):
            return True
        return False

    def start_sshd(self) -> None:
        """sshd in the namespace and a private mount namespace giving the server its own tree."""
        self._ensure_ssh_keys()
        if self.sshd_ok():
            return
        stop_pid(read_pidfile(self.sshd_pidfile), what="sshd")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        Path("/var/spool/cron/crontabs").mkdir(parents=True, exist_ok=True)
        binds = []
        for rel, target in self.private_binds:
            (self.hostdir / rel).mkdir(parents=True, exist_ok=True)
            binds.append(f"mount --bind {self.hostdir / rel} {target}")
        script = " && ".join([*binds, f"exec /usr/sbin/sshd -D -e -f {self.sshd_dir / 'sshd_config'}"])
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.sshd_pidfile.unlink(missing_ok=True)
        spawn_daemon(
            [
                "nsenter",
                f"--net={self.netns_path}",
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
            ],
            self.hostdir / "sshd.log",
        )
        wait_until(self.sshd_ok, timeout=15, what=f"sshd of {self.system}", interval=0.1)

    def stop_sshd(self) -> None:
        stop_pid(read_pidfile(self.sshd_pidfile), what="sshd")

    def ssh(self, command: str, *, check: bool = True, timeout: float = 120) -> str:
        """Run a command on the server as an operator would: ssh root@<addr> '<command>'."""
        proc = run(
            ["ssh", "-F", str(ssh_config_path()), f"root@{self.addr}", command], check=check, timeout=timeout
        )
        return str(proc.stdout)

    # ---- whole host --------------------------------------------------------------------
    def up(self) -> None:
        require(HOST_NEEDS)
        self.hostdir.mkdir(parents=True, exist_ok=True)
        self.up_network()
        self.mount_disk()
        self.start_dockerd()
        self.start_sshd()

    def down(self) -> None:
        self.stop_sshd()
        self.stop_dockerd()
        self.down_network()  # also ends stragglers (gpg-agent, shims) left in the namespace
        self.unmount_disk()

    def purge(self) -> None:
        """Remove the server's whole state; refuses while anything is still mounted in it."""
        busy = self.mounts_below(self.hostdir)
        if busy:
            raise LabError(f"cannot purge {self.hostdir}: still mounted: {', '.join(busy)}")
        shutil.rmtree(self.hostdir, ignore_errors=True)
        shutil.rmtree(self.rundir, ignore_errors=True)

    def state_lines(self) -> list[tuple[str, bool, str]]:
        """(name, ok, detail) for the host-level components, for `status`."""
        out: list[tuple[str, bool, str]] = []
        out.append(
            (
                f"netns {self.netns}",
                self.network_ok(),
                f"{self.addr}/{self.prefix} <-> {self.host_if} {self.host_addr}",
            )
        )
        dpid = self.dockerd_pid()
        out.append(("dockerd", self.docker_ok(), f"pid {dpid or '-'} {self.docker_host}"))
        spid = self.sshd_pid()
        out.append(("sshd", self.sshd_ok(), f"pid {spid or '-'} {self.addr}:{SSH_PORT}"))
        if self.disk_mounted():
            st = os.statvfs(self.disk)
            used = 100 * (1 - st.f_bavail / st.f_blocks) if st.f_blocks else 0.0
            out.append(("disk", True, f"{self.disk} tmpfs {self.disk_size}, {used:.0f}% used"))
        else:
            out.append(("disk", False, f"{self.disk} not mounted"))
        return out


def wait_tcp(addr: str, port: int, timeout: float) -> None:
    """Wait until something accepts TCP connections on addr:port."""

    def probe() -> bool:
        with socket.create_connection((addr, port), 1):
            return True

    wait_until(probe, timeout=timeout, what=f"{addr}:{port}", interval=0.1)
