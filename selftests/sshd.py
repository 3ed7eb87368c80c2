"""A throwaway OpenSSH server on 127.0.0.1, for tests and benchmarks that must not need the lab.

It has its own host key, client key, known_hosts and client ssh_config in one folder, so
host keys are verified exactly as against a real server (nothing is added to ~/.ssh).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from selftests.data_servers import free_port

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class LoopbackSshd:
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def ssh_config(self) -> Path:
        return self.folder / "ssh_config"

    def spec(self, scheme: str, options: str = "") -> str:
        """A host spec for this server; `options` are extra query options (`sudo=true`)."""
        query = f"ssh_config={self.ssh_config}" + (f"&{options}" if options else "")
        return f"{scheme}://root@{HOST}?{query}"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _write_files(folder: Path, port: int, extra: str) -> Path:
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    host_key = " ".join((folder / "host_key.pub").read_text().split()[:2])
    (folder / "known_hosts").write_text(f"[{HOST}]:{port} {host_key}\n")
    config = folder / "sshd_config"
    config.write_text(  # `extra` first: for each keyword, sshd takes the first value it reads
        f"{extra}ListenAddress {HOST}\nPort {port}\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile none\n"
        "PermitRootLogin yes\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nMaxSessions 20\n"
    )
    (folder / "ssh_config").write_text(
        f"Host {HOST}\n    Port {port}\n    User root\n    IdentityFile {folder / 'client_key'}\n"
        f"    IdentitiesOnly yes\n    UserKnownHostsFile {folder / 'known_hosts'}\n"
        "    StrictHostKeyChecking yes\n    BatchMode yes\n"
    )
    return config


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited {process.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {HOST}:{port} within {seconds:g}s")


@contextmanager
def loopback_sshd(folder: Path, extra_config: str = "") -> Iterator[LoopbackSshd]:
    """Run sshd in the foreground on a free loopback port until the block ends; `extra_config`
    goes first in its sshd_config (`SetEnv HOME=...` gives sessions a login rc file of the test's,
    `MaxSessions 2` makes it refuse channels)."""
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    config = _write_files(folder, port, extra_config)
    log = (folder / "sshd.log").open("wb")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        _wait_for_port(port, process)
        yield LoopbackSshd(port, folder, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def sshd_for_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    """The body of the shared `sshd` fixture (selftests/conftest.py)."""
    if os.geteuid() != 0:
        pytest.skip("a loopback sshd letting root in needs root")
    with loopback_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
