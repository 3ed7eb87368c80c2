"""Hundreds of SSH hosts on 127.0.0.1 for bench_scaling: sshd processes listening on many ports each.

lab/fleet.py gives at most 32 namespace hosts; a "host" here is instead one loopback port. An
sshd listens on at most 16 addresses, so `count` ports are served by ceil(count / 15) sshd
processes, each with its own host key (known_hosts has one line per port, as a real fleet's would),
one shared client key, and, as the fleet's hosts do, an empty /root of its own (a mount
namespace with /root bound over): the machine's /root/.bashrc would cost every session.
MaxStartups and MaxSessions are raised so parallel connects and the suite's shells per
connection are never refused. Everything lives in one folder and is stopped at the end:
each sshd this module started, and the per-connection sshd processes it forked.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"
PORTS_PER_SSHD = 15  # sshd's limit is 16 listen addresses


@dataclass(frozen=True)
class LoopbackFleet:
    folder: Path
    ports: list[int]

    @property
    def ssh_config(self) -> Path:
        return self.folder / "ssh_config"

    def specs(self, count: int, scheme: str = "ssh+persist") -> dict[str, str]:
        """Host name -> spec for the first `count` hosts."""
        return {
            f"lo-{port}": f"{scheme}://root@{HOST}:{port}?ssh_config={self.ssh_config}"
            for port in self.ports[:count]
        }


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open while choosing, so none repeats)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (the per-connection sshd processes a listener forked)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


@contextmanager
def loopback_fleet(count: int, folder: Path) -> Iterator[LoopbackFleet]:
    """`count` loopback SSH hosts until the block ends."""
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    folder.mkdir(parents=True, exist_ok=True)
    client_key = folder / "client_key"
    _keygen(client_key)
    (folder / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    home = folder / "root"
    home.mkdir(exist_ok=True)
    ports = _free_ports(count)
    known: list[str] = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for number, first in enumerate(range(0, count, PORTS_PER_SSHD)):
            group = ports[first : first + PORTS_PER_SSHD]
            host_key = folder / f"host_key_{number}"
            public = _keygen(host_key)
            known += [f"[{HOST}]:{port} {public}" for port in group]
            config = folder / f"sshd_config_{number}"
            config.write_text(
                "".join(f"ListenAddress {HOST}:{port}\n" for port in group)
                + f"HostKey {host_key}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
                # the suite connects up to 16 hosts at once and opens several shells on each
                "MaxStartups 1000\nMaxSessions 64\nLoginGraceTime 60\n"
            )
            script = f"mount --bind {home} /root && exec {SSHD} -D -e -f {config}"
            log = (folder / f"sshd_{number}.log").open("wb")
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
            processes.append(subprocess.Popen(argv, stdout=log, stderr=log))
            log.close()
        (folder / "known_hosts").write_text("\n".join(known) + "\n")
        (folder / "ssh_config").write_text(
            f"Host {HOST}\n    User root\n    IdentityFile {client_key}\n    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {folder / 'known_hosts'}\n    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n    ConnectTimeout 20\n"
        )
        deadline = time.monotonic() + 30
        waiting = list(ports)
        while waiting:
            dead = [process.args for process in processes if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"loopback sshd not listening (exited: {dead}); see {folder}/sshd_*.log")
            waiting = [port for port in waiting if not _listening(port)]
            time.sleep(0.05)
        yield LoopbackFleet(folder, ports)
    finally:
        for process in processes:
            below = _descendants(process.pid)
            process.terminate()
            for pid in below:
                with suppress(ProcessLookupError):
                    os.kill(pid, 15)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
