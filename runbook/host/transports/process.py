"""Transports that are a local process: `sh -c` here, `ssh host`, `docker exec`, `podman exec`.

Each command is one local process in a session of its own, read through
`selectors` with a cap on what is kept; at the deadline the whole process group
is killed, so nothing it started outlives it. Once the process has exited, a
background child that still holds its output gets `EXIT_GRACE` seconds before
it is killed too (and the output says so).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import IO

from testinfra.backend.base import BaseBackend

from runbook.host.processes import (
    Raw,
    StreamEnd,
    environment_now,
    run_process,
    stream_process,
)
from runbook.host.transports.base import Transport, TransportError, Tunnel, host_key_checking, spec_options
from runbook.host.transports.tunnel import SshTunnel


class ProcessTransport(Transport):
    """A transport whose command is a local argv; subclasses say which argv."""

    def argv(self, line: str) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def run(self, line: str, *, timeout: float) -> Raw:
        try:
            return run_process(self.argv(line), timeout=timeout, env=self.environment())
        except FileNotFoundError as exc:
            raise TransportError(f"{exc.filename} is not installed on the runner") from None

    def stream(
        self, line: str, *, timeout: float
    ) -> contextlib.AbstractContextManager[tuple[IO[bytes], StreamEnd]]:
        return stream_process(self.argv(line), timeout=timeout, env=self.environment())


class LocalTransport(ProcessTransport):
    """local://: this machine."""

    def argv(self, line: str) -> list[str]:
        return ["/bin/sh", "-c", line]

    def open_tunnel(self, host: str, port: int) -> Tunnel:
        return Tunnel(host, port)  # this machine sees the address as the host does


class SshTransport(ProcessTransport):
    """ssh://user@host:port?ssh_config=...&ssh_identity_file=...: OpenSSH's client, one per command.

    Key-based and in batch mode (never a password prompt), keepalives so a host
    that dies mid-command is noticed in ~10 s, host keys verified unless the spec
    says `host_key_check=off`. A password in the spec goes to sshpass through
    its environment, never on a command line.
    """

    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        super().__init__(spec, connect_timeout=connect_timeout)
        address = spec.split("://", 1)[1].split("?", 1)[0]
        self.host = BaseBackend.parse_hostspec(address)
        self.options = spec_options(spec)

    def base_argv(self) -> list[str]:
        timeout = self.options.get("timeout") or f"{max(1, int(self.connect_timeout))}"
        argv = ["ssh", "-T", "-o", f"ConnectTimeout={timeout}"]
        argv += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
        if not self.host.password:
            argv += ["-o", "BatchMode=yes"]
        if not host_key_checking(self.spec):
            argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        if "ssh_config" in self.options:
            argv += ["-F", os.path.expanduser(self.options["ssh_config"])]
        if "ssh_identity_file" in self.options:
            argv += ["-i", os.path.expanduser(self.options["ssh_identity_file"])]
        if self.host.port:
            argv += ["-p", str(self.host.port)]
        if self.host.user:
            argv += ["-l", self.host.user]
        if self.host.password:
            if shutil.which("sshpass") is None:
                raise TransportError("a password in an ssh:// spec needs sshpass on the runner (or use keys)")
            argv = ["sshpass", "-e", *argv]
        return argv

    def argv(self, line: str) -> list[str]:
        # The remote login shell may be bash, zsh or fish: the line always runs under sh.
        return [*self.base_argv(), "--", self.host.name, f"exec /bin/sh -c {_quote(line)}"]

    def open_tunnel(self, host: str, port: int) -> Tunnel:
        try:
            return SshTunnel(
                self.base_argv(),
                self.host.name,
                (host, port),
                env=self.environment(),
                timeout=self.connect_timeout + 10,
            )
        except FileNotFoundError as exc:
            raise TransportError(f"{exc.filename} is not installed on the runner") from None

    def environment(self) -> dict[str, str] | None:
        if not self.host.password:
            return None
        return {**environment_now(), "SSHPASS": self.host.password}


class DockerTransport(ProcessTransport):
    """docker://[user@]container: `docker exec` on this machine's docker."""

    program = "docker"

    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        super().__init__(spec, connect_timeout=connect_timeout)
        address = spec.split("://", 1)[1].split("?", 1)[0]
        self.container = BaseBackend.parse_containerspec(address)

    def argv(self, line: str) -> list[str]:
        name, user = self.container
        argv = [self.program, "exec"]
        if user:
            argv += ["-u", user]
        return [*argv, "--", name, "/bin/sh", "-c", line]


class PodmanTransport(DockerTransport):
    """podman://[user@]container."""

    program = "podman"


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
