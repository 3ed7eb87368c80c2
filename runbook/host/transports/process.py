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
import selectors
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import IO

from testinfra.backend.base import BaseBackend

from runbook.host.transports.base import (
    CHUNK,
    Capped,
    Raw,
    StreamEnd,
    Transport,
    TransportError,
    TransportTimeout,
    child_environment,
    host_key_checking,
    kill_group,
    spawn,
    spec_options,
)
from runbook.host.transports.tunnel import SshTunnel, Tunnel

EXIT_GRACE = 1.0
KILLED_NOTE = b"\n[runbook: processes the command left behind held its output open; they were killed]\n"


def run_process(argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> Raw:
    """Run argv with its output capped; kill its process group at the deadline."""
    started = time.monotonic()
    process = spawn(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=child_environment(env),
    )
    outputs = {"stdout": Capped(), "stderr": Capped()}
    selector = selectors.DefaultSelector()
    assert process.stdout is not None and process.stderr is not None
    selector.register(process.stdout, selectors.EVENT_READ, "stdout")
    selector.register(process.stderr, selectors.EVENT_READ, "stderr")
    exited_at: float | None = None
    held_open = False
    try:
        while selector.get_map():
            now = time.monotonic()
            if now - started > timeout:
                kill_group(process)
                raise TransportTimeout(f"no answer within {timeout:g}s")
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > EXIT_GRACE:
                held_open = True
                kill_group(process)
                break
            for key, _ in selector.select(timeout=0.2):
                data = os.read(key.fileobj.fileno(), CHUNK)  # type: ignore[union-attr]
                if data:
                    outputs[key.data].add(data)
                else:
                    selector.unregister(key.fileobj)
    finally:
        selector.close()
        process.stdout.close()
        process.stderr.close()
        if process.poll() is None and (time.monotonic() - started > timeout or held_open):
            kill_group(process)
        process.wait()
    stderr = outputs["stderr"].value() + (KILLED_NOTE if held_open else b"")
    dropped = outputs["stdout"].dropped + outputs["stderr"].dropped
    return Raw(process.returncode, outputs["stdout"].value(), stderr, dropped)


@contextlib.contextmanager
def stream_process(
    argv: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> Iterator[tuple[IO[bytes], StreamEnd]]:
    """argv's stdout as a stream; the deadline kills the whole group (the reader then sees EOF)."""
    process = spawn(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=child_environment(env),
    )
    end = StreamEnd()

    def expire() -> None:
        end.expired = True
        kill_group(process)

    timer = threading.Timer(timeout, expire)
    timer.start()
    errors = Capped(64 << 10)
    reader = threading.Thread(target=_drain_into, args=(process.stderr, errors), daemon=True)
    reader.start()
    try:
        assert process.stdout is not None
        yield process.stdout, end
    finally:
        timer.cancel()
        kill_group(process)
        process.wait()
        reader.join(timeout=5)
        assert process.stdout is not None
        process.stdout.close()
        end.rc = process.returncode
        end.stderr = errors.value()


def feed_processes(
    source: IO[bytes], argvs: list[list[str]], *, timeout: float, env: dict[str, str] | None = None
) -> list[Raw]:
    """Stream `source` into the stdin of several local commands at once (the source is read once).

    A command that stops reading (pg_restore --list after the TOC) just stops being fed;
    outputs are capped; at the deadline every process group is killed (TransportTimeout).
    """
    processes = [
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=child_environment(env),
        )
        for argv in argvs
    ]
    outputs = [(Capped(), Capped()) for _ in processes]
    readers = [
        threading.Thread(target=_drain_into, args=(stream, sink), daemon=True)
        for process, sinks in zip(processes, outputs, strict=True)
        for stream, sink in zip((process.stdout, process.stderr), sinks, strict=True)
    ]
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for process in processes:
            kill_group(process)

    timer = threading.Timer(timeout, expire)
    timer.start()
    for reader in readers:
        reader.start()
    feeding = [process.stdin for process in processes if process.stdin is not None]
    try:
        while feeding and (chunk := source.read(CHUNK)):
            for stdin in list(feeding):
                try:
                    stdin.write(chunk)
                except (BrokenPipeError, OSError, ValueError):
                    feeding.remove(stdin)
    finally:
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.close()  # type: ignore[union-attr]
        for process in processes:
            process.wait()
        timer.cancel()
        for reader in readers:
            reader.join(timeout=5)
    if expired.is_set():
        raise TransportTimeout(f"not finished within {timeout:g}s")
    return [
        Raw(process.returncode, stdout.value(), stderr.value(), stdout.dropped + stderr.dropped)
        for process, (stdout, stderr) in zip(processes, outputs, strict=True)
    ]


def _drain_into(stream: IO[bytes] | None, sink: Capped) -> None:
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        while data := stream.read(CHUNK):
            sink.add(data)


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
        return {**os.environ, "SSHPASS": self.host.password}


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
