"""The host seam: every command the checks send to a host goes through `Target`.

A `Connection` is one host spec's transport (runbook.host.transports: local, ssh,
paramiko, docker, or any other testinfra backend), shared by every system that
names the same spec, with the run's one "host unreachable" verdict and its
cache of facts. A `Target` is that connection as one system names it, with the
system's command deadline.

What a command means is decided here, the same over every transport:
- a deadline on the host (`timeout -k 2 N`) and one on the runner, so nothing hangs;
- the exit code comes back in-band, so a command that exits 255 is told apart from
  ssh's own 255 (a transport failure), which marks the host unreachable;
- what the command leaves running in the background is killed when it ends, and
  the output says so;
- output is capped (head and tail kept, the cut said) and decoded tolerantly,
  undecodable bytes shown as `\\xff`;
- `?sudo=true[&sudo_user=U]` in the spec runs everything through `sudo -n`.
"""

from __future__ import annotations

import shlex
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from runbook.errors import CheckError, CommandTimeout, HostUnreachable
from runbook.host.processes import SpawnError
from runbook.host.transports import Transport, TransportError, TransportTimeout, open_transport
from runbook.host.transports.base import CommandLost, host_key_checking, spec_options
from runbook.host.transports.shell_session import LEFT_BEHIND
from runbook.secrets import SECRETS

T = TypeVar("T")

# remote `timeout` exits 124 (137 after -k).
TIMEOUT_EXIT = {124, 137}
# How long past the command's own deadline the transport may take before we give up.
TRANSPORT_GRACE = 5.0
EXIT_MARK = "__runbook_exit__ "
# Runs the line under `timeout` in its own process group (timeout makes one), waits, kills
# whatever the line left behind in that group, and reports the exit code on stderr.
WRAPPER = (
    "timeout -k 2 {limit} /bin/sh -c {line} & p=$!; wait $p; rc=$?; "
    "if kill -0 -$p 2>/dev/null; then kill -9 -$p 2>/dev/null; "
    f"echo '{LEFT_BEHIND}' >&2; fi; "
    'echo "{mark}$rc" >&2'
)
# Over a transport that runs each command as a job of its own (ssh+persist://), the host-side
# deadline is all that is left to add: `timeout` makes the process group that the transport kills
# after the command, and the exit code comes back framed. One exec instead of a shell, a fork
# and an exec (about 0.3 ms a command, bench/RESULTS.md).
JOB_WRAPPER = "exec timeout -k 2 {limit} /bin/sh -c {line}"


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str
    duration: float
    dropped: int = 0  # bytes of output cut out of the middle (the cap)

    @property
    def ok(self) -> bool:
        return self.rc == 0


def display_spec(spec: str) -> str:
    """A host spec without query options or password, for messages and report headers."""
    base = spec.split("?", 1)[0]
    if "@" in base and ":" in base.split("://", 1)[-1].split("@", 1)[0]:
        scheme, rest = base.split("://", 1)
        user = rest.split("@", 1)[0].split(":", 1)[0]
        base = f"{scheme}://{user}:***@{rest.split('@', 1)[1]}"
    if not host_key_checking(spec):
        base += " (host key NOT verified)"
    return base


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


class Connection:
    """One host spec for the whole run: its transport, its verdict, its cached facts."""

    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        self.spec = spec
        self.connect_timeout = connect_timeout
        self.display = display_spec(spec)
        options = spec_options(spec)
        self.sudo = options.get("sudo", "").lower() == "true"
        self.sudo_user = options.get("sudo_user")
        self._transport: Transport | None = None
        self._testinfra_host: Any = None
        self.unreachable: HostUnreachable | None = None
        self.cache: dict[tuple[Any, ...], Any] = {}
        self.lock = threading.Lock()

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = open_transport(self.spec, connect_timeout=self.connect_timeout)
        return self._transport

    @property
    def testinfra_host(self) -> Any:
        """A testinfra host on the same spec, for custom checks using testinfra's modules."""
        if self._testinfra_host is None:
            import testinfra

            shared = getattr(self.transport, "testinfra_host", None)  # same connection, if offered
            self._testinfra_host = shared() if shared else testinfra.get_host(self.spec)
        return self._testinfra_host

    def as_root_or_user(self, line: str) -> str:
        if not self.sudo:
            return line
        user = f"-u {shlex.quote(self.sudo_user)} " if self.sudo_user else ""
        return f"sudo -n {user}-- /bin/sh -c {shlex.quote(line)}"

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        backend = getattr(self._testinfra_host, "backend", None)
        client = getattr(backend, "__dict__", {}).get("client")
        if client is not None:
            client.close()


class Target:
    """One host of one system, as the checks see it."""

    def __init__(
        self,
        name: str,
        spec: str,
        *,
        command_timeout: float,
        connect_timeout: float,
        connection: Connection | None = None,
        peers: Callable[[str], Target] | None = None,
    ) -> None:
        self.name = name
        self._peers = peers
        self.spec = spec
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.connection = connection or Connection(spec, connect_timeout=connect_timeout)
        self.scheme = spec.split("://", 1)[0]

    def __repr__(self) -> str:
        return f"Target({self.name}={self.display})"

    def peer(self, host_name: str) -> Target:
        """Another host of the same system (an off-host backup copy, a replica), by its name."""
        if self._peers is None:
            raise CheckError(f"{self.name}: no other hosts known (host {host_name!r} asked for)")
        return self._peers(host_name)

    @property
    def unreachable(self) -> HostUnreachable | None:
        """Set once a command found the host down; later commands fail at once."""
        return self.connection.unreachable

    @property
    def display(self) -> str:
        return self.connection.display

    @property
    def address(self) -> str | None:
        """The network address in the host's spec (ssh://user@ADDRESS:22), None for local:// etc."""
        if self.scheme in {"local", "docker", "podman"}:
            return None
        return urllib.parse.urlsplit(self.spec).hostname

    @property
    def host(self) -> Any:
        """The testinfra host (`host.file(...)`, `host.service(...)`) for custom checks."""
        return self.connection.testinfra_host

    # -- commands ---------------------------------------------------------------------

    def run(self, command: str, *args: str, timeout: float | None = None) -> Result:
        """Run a shell command (args are quoted) with a deadline; never hangs."""
        if self.connection.unreachable is not None:
            raise HostUnreachable(f"{self.connection.unreachable} (reported once, not retried)")
        limit = timeout or self.command_timeout
        line = command % tuple(shlex.quote(arg) for arg in args) if args else command
        # Under sudo the command's group is sudo's child's, not the job's: keep the full wrapper.
        as_job = self.connection.transport.jobs_per_command and not self.connection.sudo
        wrapper = JOB_WRAPPER if as_job else WRAPPER
        wrapped = wrapper.format(limit=f"{limit:g}", line=shlex.quote(line), mark=EXIT_MARK)
        started = time.monotonic()
        try:
            raw = self.connection.transport.run(
                self.connection.as_root_or_user(wrapped), timeout=limit + TRANSPORT_GRACE
            )
        except TransportTimeout:
            raise CommandTimeout(
                f"{self.display}: `{line}` got no answer within {limit + TRANSPORT_GRACE:g}s"
            ) from None
        except TransportError as exc:
            raise self._mark_unreachable(str(exc)) from None
        except SpawnError as exc:
            raise CheckError(f"{self.display}: `{line}` not run: {exc}") from None
        except CommandLost as exc:
            raise CheckError(f"{self.display}: `{line}` has no result: {exc}") from None
        except Exception as exc:
            raise self._classify(exc) from None
        duration = time.monotonic() - started
        stderr = decode(raw.stderr)
        if as_job:
            rc, before = raw.rc, stderr
        else:
            before, mark, exit_text = stderr.rpartition(EXIT_MARK)
            if not mark or not exit_text.strip().isdigit():
                # The wrapper never finished: the connection failed (ssh's own 255, a reset).
                said = stderr.strip() or f"the transport exited {raw.rc} without running the command"
                raise self._mark_unreachable(said)
            rc = int(exit_text.strip())
        if rc in TIMEOUT_EXIT and duration >= limit:
            raise CommandTimeout(f"{self.display}: `{line}` did not finish within {limit:g}s")
        return Result(rc, decode(raw.stdout), before, duration, raw.dropped)

    def check_reachable(self) -> Result:
        """The cheapest round trip; its failure is cached for all later checks."""
        return self.run("true", timeout=self.connect_timeout + 5)

    def _classify(self, exc: BaseException) -> CheckError:
        if isinstance(exc, CheckError):  # our own deadline: already says what happened
            return exc
        text = str(exc) or type(exc).__name__
        first = exc.args[0] if getattr(exc, "args", None) else None
        stderr = getattr(first, "stderr", None)
        if isinstance(stderr, str) and stderr.strip():
            text = stderr.strip()
        if isinstance(exc, RuntimeError | OSError | EOFError) or "paramiko" in type(exc).__module__:
            return self._mark_unreachable(f"{type(exc).__name__}: {text}")
        return CheckError(f"{self.display}: {type(exc).__name__}: {text}")

    def _mark_unreachable(self, reason: str) -> HostUnreachable:
        reason = SECRETS.mask(" ".join(reason.split()))[:300]
        verdict = HostUnreachable(f"host {self.name} ({self.display}) unreachable: {reason}")
        self.connection.unreachable = verdict
        return verdict

    # -- cached facts -----------------------------------------------------------------

    def forget_facts(self) -> None:
        """Drop what was read once per run (a retry after a wait must look again)."""
        with self.connection.lock:
            self.connection.cache.clear()

    def cached(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """Facts read once per run and host (docker inspect, docker stats, a backup listing)."""
        with self.connection.lock:
            if key not in self.connection.cache:
                self.connection.cache[key] = compute()
            return self.connection.cache[key]  # type: ignore[no-any-return]

    # -- streaming --------------------------------------------------------------------

    @contextmanager
    def open_stream(self, path: str, timeout: float) -> Iterator[IO[bytes]]:
        """Read a (possibly large) file of the host as a stream, cut off at the deadline."""
        if self.connection.unreachable is not None:
            raise self.connection.unreachable
        line = self.connection.as_root_or_user(f"cat -- {shlex.quote(path)}")
        too_slow = CommandTimeout(f"{self.display}: reading {path} took longer than {timeout:g}s")
        try:
            with self.connection.transport.stream(line, timeout=timeout) as (stream, end):
                try:
                    yield stream
                except Exception:
                    if end.expired:
                        raise too_slow from None
                    raise
        except TransportError as exc:
            raise self._mark_unreachable(str(exc)) from None
        except SpawnError as exc:
            raise CheckError(f"{self.display}: reading {path} not started: {exc}") from None
        if end.expired:
            raise too_slow
        if end.rc not in (0, -9, None) and end.stderr.strip():
            raise CheckError(f"reading {path}: {decode(end.stderr).strip()[:300]}")


class TargetPool:
    """One Connection per host spec for the whole run (two systems on one server share it)."""

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def get(
        self,
        name: str,
        spec: str,
        *,
        command_timeout: float,
        connect_timeout: float,
        peers: Callable[[str], Target] | None = None,
    ) -> Target:
        with self._lock:
            connection = self._connections.get(spec)
            if connection is None:
                connection = self._connections[spec] = Connection(spec, connect_timeout=connect_timeout)
        return Target(
            name,
            spec,
            command_timeout=command_timeout,
            connect_timeout=connect_timeout,
            connection=connection,
            peers=peers,
        )

    def close(self) -> None:
        for connection in self._connections.values():
            try:
                connection.close()
            except Exception:  # closing at the end of the run must not fail the run
                continue
        self._connections.clear()
