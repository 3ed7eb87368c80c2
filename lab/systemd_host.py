"""A lab host whose PID 1 is a real systemd, for runbooks that speak systemctl and journalctl.

The host is a container of a Debian root made by debootstrap (systemd, dbus, openssh-server and
whatever the system adds), run as systemd wants it in a container: `/sbin/init` with
CAP_SYS_ADMIN, the cgroup tree read-only, tmpfs /run, `container=docker`. Its own dockerd (the
"carrier", in a network namespace of its own) runs it with no network; the kit then attaches a
named namespace to the container's and gives it a veth and its /30 from the lab range, so it is
reached over SSH like every other lab host, with the lab's key and a pinned host key.

The root is built once and kept as a tarball in the cache dir (`down --purge` leaves it), so
only the first `up` on a machine pays for debootstrap.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from lab.core import Component, LabError, file_lock, require, run, wait_until
from lab.dockerd import Dockerd
from lab.network import delete_netns, ensure_netns, in_netns, netns_path
from lab.placement import Placement
from lab.ssh import SSH_PORT, client_key, make_key, pin_host, ssh_config_path

SYSTEMD_NEEDS = {
    "debootstrap": "debootstrap",
    "tar": "tar",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "dockerd": "docker.io",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server")
MIRROR = "http://deb.debian.org/debian"
IMAGE_REPOSITORY = "runbook-lab/systemd"


def cache_dir() -> Path:
    """Built roots; survives `down --purge` (delete it by hand to rebuild)."""
    return Path(os.environ.get("RUNBOOK_LAB_CACHE_DIR", "/var/cache/runbook-lab"))


@dataclass(frozen=True)
class SystemdImage:
    """A Debian `suite` root with systemd, sshd and `packages`, cached as a tarball."""

    suite: str = "bookworm"
    packages: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Names the build: another suite or package list is another tarball and image."""
        wanted = " ".join([self.suite, *sorted({*BASE_PACKAGES, *self.packages})])
        return hashlib.sha256(wanted.encode()).hexdigest()[:12]

    @property
    def tarball(self) -> Path:
        return cache_dir() / f"systemd-{self.suite}-{self.key}.tar"

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.suite}-{self.key}"

    def ensure_tarball(self) -> Path:
        """debootstrap the root (about 40 s) unless the cache has it (one build at a time)."""
        if self.tarball.exists():
            return self.tarball
        with file_lock(cache_dir() / f".lock-{self.key}"):
            return self._build_tarball()

    def _build_tarball(self) -> Path:
        if self.tarball.exists():  # built while this one waited for the lock
            return self.tarball
        rootfs = cache_dir() / f".rootfs-{self.key}"
        shutil.rmtree(rootfs, ignore_errors=True)
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        include = ",".join(sorted({*BASE_PACKAGES, *self.packages}))
        try:
            command = ["debootstrap", "--variant=minbase", f"--include={include}", self.suite, str(rootfs)]
            run([*command, MIRROR], timeout=900)
            self._prune(rootfs)
            partial = self.tarball.with_suffix(".partial")
            run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
            partial.replace(self.tarball)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        return self.tarball

    @staticmethod
    def _prune(rootfs: Path) -> None:
        """No host keys or machine id shared by every host made from it; no package cache."""
        for key in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
            key.unlink()
        (rootfs / "etc" / "machine-id").write_text("")  # empty: systemd makes one at boot
        for leftover in [*(rootfs / "var/cache/apt/archives").glob("*.deb"), rootfs / "var/lib/apt/lists"]:
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()

    def ensure_imported(self, client: docker.DockerClient) -> None:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(self.tag)
            return
        repository, tag = self.tag.split(":")
        client.api.import_image_from_file(str(self.ensure_tarball()), repository=repository, tag=tag)


@dataclass(frozen=True)
class SystemdHost(Placement):
    """A systemd lab host; its container is named like its directories (`label`)."""

    image: SystemdImage = SystemdImage()
    # Extra tmpfs mounts (path, options): a small filesystem of its own, e.g. a service's temp_dir.
    tmpfs: tuple[tuple[str, str], ...] = ()

    # ---- paths -------------------------------------------------------------------------
    @property
    def carrier(self) -> Dockerd:
        """The dockerd that runs the host's container (not a docker of the host's own)."""
        return self.dockerd_in(f"{self.netns}-carrier")

    @property
    def host_key(self) -> Path:
        return self.hostdir / "ssh_host_ed25519_key"

    # ---- the container -----------------------------------------------------------------
    def container(self, client: docker.DockerClient) -> Container | None:
        try:
            return client.containers.get(self.label)
        except docker.errors.NotFound:
            return None

    def _create(self, client: docker.DockerClient) -> Container:
        container = client.containers.create(
            self.image.tag,
            ["/sbin/init"],
            name=self.label,
            hostname=self.label,
            network_mode="none",
            cap_add=["SYS_ADMIN"],
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
            tmpfs={"/run": "", "/run/lock": "", **dict(self.tmpfs)},
            environment={"container": "docker"},
            stop_signal="SIGRTMIN+3",  # systemd's "shut down cleanly"
        )
        container.put_archive("/", self._ssh_files())
        return container

    def _ssh_files(self) -> bytes:
        """The host's own host key and root's authorized_keys (the lab's client key)."""
        make_key(self.host_key, comment=f"root@{self.label}")
        files = {
            "etc/ssh/ssh_host_ed25519_key": (self.host_key.read_bytes(), 0o600),
            "etc/ssh/ssh_host_ed25519_key.pub": (self.host_key.with_suffix(".pub").read_bytes(), 0o644),
            "root/.ssh/authorized_keys": (client_key().with_suffix(".pub").read_bytes(), 0o600),
        }
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("root/.ssh")
            info.type, info.mode = tarfile.DIRTYPE, 0o700
            tar.addfile(info)
            for name, (data, mode) in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def _running_pid(self) -> int:
        """Start the container unless it runs; the host pid of its systemd."""
        with self.carrier.session() as client:
            self.image.ensure_imported(client)
            container = self.container(client) or self._create(client)
            if container.status != "running":
                container.start()
            container.reload()
            pid = int(container.attrs["State"]["Pid"])
        if not pid:
            raise LabError(f"container {self.label} did not start")
        return pid

    def _attach_netns(self, pid: int) -> None:
        """Name the container's network namespace `netns` (again, if it was restarted)."""
        if in_netns(pid, self.netns):
            return
        if netns_path(self.netns).exists():
            run(["ip", "netns", "del", self.netns])
        run(["ip", "netns", "attach", self.netns, str(pid)])

    def systemd_state(self) -> str:
        """`systemctl is-system-running` inside (running, degraded, starting, ...), or why not."""
        if not self.carrier.ok():
            return "carrier dockerd down"
        with self.carrier.session() as client:
            container = self.container(client)
            if container is None or container.status != "running":
                return f"container {container.status if container else 'missing'}"
            result = container.exec_run(["systemctl", "is-system-running"])
            return str(result.output.decode(errors="replace").strip() or result.exit_code)

    def ssh_ok(self) -> bool:
        if not self.link.ok():
            return False
        probe = ["ssh", "-F", str(ssh_config_path()), f"root@{self.addr}", "true"]
        return run(probe, check=False, timeout=15).returncode == 0

    # ---- whole host --------------------------------------------------------------------
    def ok(self) -> bool:
        return self.ssh_ok()

    def up(self) -> None:
        require(SYSTEMD_NEEDS)
        self.hostdir.mkdir(parents=True, exist_ok=True)
        self.image.ensure_tarball()
        ensure_netns(self.carrier.netns)
        self.carrier.start()
        self._attach_netns(self._running_pid())
        self.link.up()
        pin_host(self.addr, self.host_key.with_suffix(".pub"), label=self.label)
        wait_until(self.ssh_ok, timeout=180, what=f"ssh to {self.label} ({self.addr})", interval=0.2)

    def down(self) -> None:
        if self.carrier.ok():
            with self.carrier.session() as client:
                container = self.container(client)
                if container is not None and container.status == "running":
                    container.stop(timeout=20)
        if netns_path(self.netns).exists():
            run(["ip", "netns", "del", self.netns])
        self.link.wait_gone()
        self.carrier.stop()
        delete_netns(self.carrier.netns)

    def components(self) -> list[Component]:
        state = self.systemd_state()
        return [
            Component(f"systemd {self.label}", state in ("running", "degraded"), f"PID 1 systemd: {state}"),
            Component(f"netns {self.netns}", self.link.ok(), self.link.detail),
            Component("sshd", self.ssh_ok(), f"{self.addr}:{SSH_PORT}"),
        ]
