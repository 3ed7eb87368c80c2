"""A dockerd of the lab's own, inside a network namespace, with its state under one directory.

Each lab host runs one, so `docker ps`, `docker events` and restart counts are the host's
alone. It is started with `nsenter`: `ip netns exec` remounts /sys, which breaks dockerd.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from lab.core import read_pidfile, run, spawn_daemon, stop_pid, wait_until
from lab.network import in_netns, netns_path


@dataclass(frozen=True)
class Dockerd:
    """dockerd for host `label`: data in `statedir`, socket and pid file in `rundir`."""

    label: str
    netns: str
    statedir: Path
    rundir: Path
    address_pool: str

    @property
    def sock(self) -> Path:
        return self.rundir / "docker.sock"

    @property
    def url(self) -> str:
        """What DOCKER_HOST is set to for this host."""
        return f"unix://{self.sock}"

    @property
    def pidfile(self) -> Path:
        return self.rundir / "dockerd.pid"

    @property
    def data_root(self) -> Path:
        return self.statedir / "docker"

    def pid(self) -> int | None:
        pid = read_pidfile(self.pidfile)
        return pid if pid and in_netns(pid, self.netns) else None

    def client(self, *, timeout: int = 30) -> docker.DockerClient:
        """A new client; the caller closes it (or uses `session`)."""
        return docker.DockerClient(base_url=self.url, version="auto", timeout=timeout)

    @contextlib.contextmanager
    def session(self) -> Iterator[docker.DockerClient]:
        client = self.client()
        try:
            yield client
        finally:
            client.close()

    def ok(self) -> bool:
        if not self.pid():
            return False
        try:
            client = self.client(timeout=5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False

    def start(self) -> None:
        if self.ok():
            return
        stale = read_pidfile(self.pidfile)
        if stale:  # alive but in an old namespace or not answering
            stop_pid(stale, what="dockerd")
        # A dead dockerd's pidfile names, by then, whatever process got its pid: dockerd refuses to
        # start while that one lives ("pid file found"; seen after the machine was paused with the
        # lab down). read_pidfile has told ours from such a squatter; the file goes either way.
        self.pidfile.unlink(missing_ok=True)
        self._forget_dead_containerd()
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        spawn_daemon(
            [
                "nsenter",
                f"--net={netns_path(self.netns)}",
                "dockerd",
                "--iptables=false",
                "--bridge=none",
                "-H",
                self.url,
                "--data-root",
                str(self.data_root),
                "--exec-root",
                str(self.rundir / "exec"),
                "--pidfile",
                str(self.pidfile),
                "--default-address-pool",
                self.address_pool,
                "--shutdown-timeout",
                "5",
            ],
            self.statedir / "dockerd.log",
        )
        # 180 s: a dockerd starting beside the other systems' tests on a busy 2-core runner took
        # over 60 s once; it is waited for, not a verdict.
        wait_until(self.ok, timeout=180, what=f"dockerd of {self.label}", interval=0.1)

    def _forget_dead_containerd(self) -> None:
        """Remove the pidfile of this dockerd's own containerd unless that containerd still lives.

        dockerd keeps a containerd it finds alive by its pidfile; a pidfile naming a process that
        took the dead containerd's pid made dockerd wait on it ("containerd is still running")
        and time out after the VM was paused with the lab down.
        """
        pidfile = self.rundir / "exec" / "containerd" / "containerd.pid"
        pid = read_pidfile(pidfile)
        if pid is not None:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"containerd" in cmdline and str(self.rundir).encode() in cmdline:
                    return
        pidfile.unlink(missing_ok=True)

    def stop(self) -> None:
        stop_pid(read_pidfile(self.pidfile), timeout=40, what="dockerd")
        # dockerd bind-mounts its data root onto itself (and overlays below it) and does
        # not always undo that on exit; left mounted, they block `down --purge`.
        for mount in mounts_below(self.data_root):
            run(["umount", "-l", mount], check=False)

    def restart(self) -> None:
        """Restarting dockerd is the only way to drop its in-memory event log."""
        self.stop()
        self.start()


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below path, deepest first."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    mounts = {line.split()[4] for line in lines}
    below = [mount for mount in mounts if mount == str(path) or mount.startswith(f"{path}/")]
    return sorted(below, key=len, reverse=True)
