"""The host seam: every command the checks send to a host goes through `Target`.

Today a Target wraps a pytest-testinfra host (local://, ssh://, paramiko://,
docker://, ...). What it adds is what testinfra leaves out and an ops run
needs: a deadline on every command (a remote `timeout` plus a local watchdog
for a transport that hangs), a single "host unreachable" verdict that later
checks reuse instead of each waiting for their own timeout, and streaming reads
of big files. A persistent-session backend or parallel hosts replace this class's
insides, not its callers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import testinfra

from runbook.outcome import CheckError, CommandTimeout, HostUnreachable
from runbook.secrets import SECRETS

T = TypeVar("T")

# ssh(1) exits 255 for its own errors; remote `timeout` exits 124 (137 after -k).
SSH_ERROR = 255
TIMEOUT_EXIT = {124, 137}
# How long past the command's own deadline the transport may take before we give up.
TRANSPORT_GRACE = 5.0


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.rc == 0


def _call_with_deadline(func: Callable[[], T], seconds: float, what: str) -> T:
    """Run func in a daemon thread; a transport that never returns cannot hang the run."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True, name=f"runbook: {what}")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CommandTimeout(f"{what}: no answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def display_spec(spec: str) -> str:
    """A host spec without query options or password, for messages and report headers."""
    base = spec.split("?", 1)[0]
    if "@" in base and ":" in base.split("://", 1)[1].split("@", 1)[0]:
        scheme, rest = base.split("://", 1)
        user = rest.split("@", 1)[0].split(":", 1)[0]
        base = f"{scheme}://{user}:***@{rest.split('@', 1)[1]}"
    return base


class Target:
    """One host of one system, as the checks see it."""

    def __init__(self, name: str, spec: str, *, command_timeout: float, connect_timeout: float) -> None:
        self.name = name
        self.spec = spec
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.scheme = spec.split("://", 1)[0]
        self._host: Any = None
        self._unreachable: HostUnreachable | None = None
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Target({self.name}={self.display})"

    @property
    def unreachable(self) -> HostUnreachable | None:
        """Set once a command found the host down; later commands fail at once."""
        return self._unreachable

    @property
    def display(self) -> str:
        return display_spec(self.spec)

    @property
    def host(self) -> Any:
        """The testinfra host, built on first use (testinfra's own lazy style)."""
        if self._host is None:
            kwargs: dict[str, Any] = {}
            if self.scheme in {"ssh", "safe-ssh", "paramiko"} and "timeout=" not in self.spec:
                kwargs["timeout"] = int(max(1, self.connect_timeout))
            if self.scheme in {"ssh", "safe-ssh"}:
                # BatchMode: never wait at a password prompt; keepalives: a host that
                # dies mid-command is noticed in ~10 s instead of the TCP timeout.
                kwargs["ssh_extra_args"] = (
                    "-o BatchMode=yes -o ServerAliveInterval=5 -o ServerAliveCountMax=2"
                )
            self._host = testinfra.get_host(self.spec, **kwargs)
        return self._host

    # -- commands ---------------------------------------------------------------------

    def run(self, command: str, *args: str, timeout: float | None = None) -> Result:
        """Run a shell command (args are quoted) with a deadline; never hangs."""
        if self._unreachable is not None:
            raise HostUnreachable(f"{self._unreachable} (reported once, not retried)")
        limit = timeout or self.command_timeout
        line = command % tuple(shlex.quote(arg) for arg in args) if args else command
        wrapped = f"timeout -k 2 {limit:g} sh -c {shlex.quote(line)}"
        started = time.monotonic()
        try:
            raw = _call_with_deadline(
                lambda: self.host.run(wrapped), limit + TRANSPORT_GRACE, f"{self.display}: {line}"
            )
        except Exception as exc:
            raise self._classify(exc) from None
        duration = time.monotonic() - started
        if raw.rc in TIMEOUT_EXIT and duration >= limit:
            raise CommandTimeout(f"{self.display}: `{line}` did not finish within {limit:g}s")
        if raw.rc == SSH_ERROR and self.scheme in {"ssh", "safe-ssh"}:
            raise self._mark_unreachable(raw.stderr.strip() or "ssh exited 255")
        return Result(raw.rc, raw.stdout, raw.stderr, duration)

    def check_reachable(self) -> Result:
        """The cheapest round trip; its failure is cached for all later checks."""
        return self.run("true", timeout=self.connect_timeout + 5)

    def _classify(self, exc: Exception) -> CheckError:
        if isinstance(exc, CheckError):  # our own deadline: already says what happened
            return exc
        text = str(exc)
        stderr = getattr(getattr(exc, "args", [None])[0], "stderr", None)
        if isinstance(stderr, str) and stderr.strip():
            text = stderr.strip()
        if isinstance(exc, RuntimeError | OSError | EOFError) or "paramiko" in type(exc).__module__:
            return self._mark_unreachable(f"{type(exc).__name__}: {text}")
        return CheckError(f"{self.display}: {type(exc).__name__}: {text}")

    def _mark_unreachable(self, reason: str) -> HostUnreachable:
        reason = SECRETS.mask(" ".join(reason.split()))[:300]
        self._unreachable = HostUnreachable(f"host {self.name} ({self.display}) unreachable: {reason}")
        return self._unreachable

    # -- cached facts -----------------------------------------------------------------

    def cached(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """Facts read once per run (docker stats of all containers, a backup listing)."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return self._cache[key]  # type: ignore[no-any-return]

    def docker_inspect(self, container: str) -> dict[str, Any] | None:
        """`docker inspect` of one container, or None when it does not exist."""

        def read() -> dict[str, Any] | None:
            result = self.run("docker inspect --type container %s", container)
            if result.rc != 0:
                if "no such" in (result.stderr + result.stdout).lower():
                    return None
                raise CheckError(f"docker inspect {container} failed: {result.stderr.strip()[:300]}")
            return json.loads(result.stdout)[0]  # type: ignore[no-any-return]

        return self.cached(("inspect", container), read)

    # -- streaming --------------------------------------------------------------------

    @contextmanager
    def open_stream(self, path: str, timeout: float) -> Iterator[IO[bytes]]:
        """Read a (possibly large) remote file as a stream, killed at the deadline."""
        if self._unreachable is not None:
            raise self._unreachable
        backend = self.host.backend
        name = getattr(backend, "NAME", "")
        cat = f"cat -- {shlex.quote(path)}"
        if name == "local":
            argv = cat
        elif name in {"ssh", "safe-ssh"}:
            ssh, ssh_args = backend._build_ssh_command(cat)  # testinfra 10's builder
            argv = backend.quote(" ".join(ssh), *ssh_args)
        elif name in {"docker", "podman"}:
            argv = f"{name} exec {shlex.quote(backend.name)} {cat}"
        elif name == "paramiko":
            with self._paramiko_stream(backend, cat, timeout) as stream:
                yield stream
            return
        else:
            raise CheckError(f"streaming a file is not supported over {name}:// yet")
        # A session of its own: the deadline kills the shell *and* the cat/ssh it started,
        # which would otherwise keep the pipe open and the reader blocked.
        process = subprocess.Popen(
            argv,
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        expired = threading.Event()

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        def expire() -> None:
            expired.set()
            kill()

        timer = threading.Timer(timeout, expire)
        timer.start()
        too_slow = CommandTimeout(f"{self.display}: reading {path} took longer than {timeout:g}s")
        try:
            assert process.stdout is not None
            yield process.stdout
        except Exception:
            if expired.is_set():
                raise too_slow from None
            raise
        finally:
            timer.cancel()
            kill()
            _, stderr = process.communicate()
        if expired.is_set():
            raise too_slow
        if process.returncode not in (0, -9) and stderr:
            raise CheckError(f"reading {path}: {stderr.decode(errors='replace').strip()[:300]}")

    @contextmanager
    def _paramiko_stream(self, backend: Any, command: str, timeout: float) -> Iterator[IO[bytes]]:
        channel = backend.client.get_transport().open_session()
        channel.settimeout(timeout)
        channel.exec_command(command)
        try:
            yield channel.makefile("rb")
        finally:
            channel.close()


class TargetPool:
    """One Target per (system, host) for the whole run, so caches and verdicts are shared."""

    def __init__(self) -> None:
        self._targets: dict[tuple[str, str], Target] = {}

    def get(
        self, system: str, name: str, spec: str, *, command_timeout: float, connect_timeout: float
    ) -> Target:
        key = (system, name)
        if key not in self._targets:
            self._targets[key] = Target(
                name, spec, command_timeout=command_timeout, connect_timeout=connect_timeout
            )
        return self._targets[key]
