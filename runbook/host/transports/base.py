"""The interface every transport implements, and the capped reading they share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import urllib.parse
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from runbook.host.transports.tunnel import Tunnel

# What is kept of one stream of a command's output: the first and the last half.
OUTPUT_CAP = 4 << 20
CHUNK = 1 << 16


class TransportError(Exception):
    """The connection failed (not the command): the host is unreachable for this run."""


class TransportTimeout(Exception):
    """The transport itself did not finish by the deadline (the command may still run)."""


class CommandLost(Exception):
    """The host took the command, then the shell running it ended before it answered: this
    command has no result, but the host answered; the next command opens a new shell (and
    finds the host unreachable then, if it is)."""


class SpawnError(Exception):
    """This machine could not start the transport's own program (out of processes, memory):
    a fault of the runner, not of the host, so the host keeps its verdict."""


def spawn(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen, with a failure to start told apart from a missing program."""
    try:
        return subprocess.Popen(argv, **options)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SpawnError(f"the runner could not start {argv[0]}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Raw:
    """What came back: exit code and bytes, with `dropped` bytes cut out of the middle."""

    rc: int
    stdout: bytes
    stderr: bytes
    dropped: int = 0


class Capped:
    """Keeps the head and the tail of a byte stream up to a cap; counts what it drops."""

    def __init__(self, cap: int = OUTPUT_CAP) -> None:
        self.half = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.half
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def value(self) -> bytes:
        if not self.dropped:
            return bytes(self.head + self.tail)
        note = f"\n[... {self.dropped} bytes of output not kept ...]\n".encode()
        return bytes(self.head) + note + bytes(self.tail)


def child_environment(env: dict[str, str] | None) -> dict[str, str]:
    """The environment to start a local process with, always as a copy taken now.

    With env=None the child reads the C `environ` while it execs, and pytest rewrites
    PYTEST_CURRENT_TEST in the main thread at every phase: a check run ahead in another
    thread then saw its exec fail with EFAULT ('Bad address: /bin/sh') now and then.
    """
    return dict(os.environ) if env is None else env


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a local process started with start_new_session, and everything it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def spec_options(spec: str) -> dict[str, str]:
    """The query options of a host spec (`?sudo=true&ssh_config=...`), last value wins."""
    query = spec.split("?", 1)[1] if "?" in spec else ""
    return {key: values[-1] for key, values in urllib.parse.parse_qs(query).items()}


def host_key_checking(spec: str) -> bool:
    """Host keys are verified unless the spec says `?host_key_check=off` (shown in the report)."""
    return spec_options(spec).get("host_key_check", "on").lower() not in {"off", "false", "no"}


class Transport(ABC):
    """One connection to one host, shared by every check that runs there."""

    # True when every command runs as a job of its own whose exit code comes back exactly and
    # whose process group is killed once it exits: Target then needs no wrapper shell of its own.
    jobs_per_command: ClassVar[bool] = False

    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        self.spec = spec
        self.connect_timeout = connect_timeout
        self._tunnels: dict[tuple[str, int], Tunnel] = {}
        self._tunnels_lock = threading.Lock()

    @abstractmethod
    def run(self, line: str, *, timeout: float) -> Raw:
        """Run a POSIX shell line; raise TransportTimeout after `timeout`, TransportError if unreachable."""

    @abstractmethod
    def stream(self, line: str, *, timeout: float) -> AbstractContextManager[tuple[IO[bytes], StreamEnd]]:
        """The stdout of a shell line as a stream, cut off at `timeout`."""

    def tunnel(self, host: str, port: int) -> Tunnel:
        """A local address forwarding to host:port as this host sees it: one per address, reopened
        if it died, closed with the transport at the end of the run."""
        with self._tunnels_lock:
            tunnel = self._tunnels.get((host, port))
            if tunnel is None or not tunnel.alive():
                if tunnel is not None:
                    tunnel.close()
                tunnel = self._tunnels[(host, port)] = self.open_tunnel(host, port)
            return tunnel

    def open_tunnel(self, host: str, port: int) -> Tunnel:
        """A new forward to host:port; transports that can forward override this."""
        scheme = self.spec.split("://", 1)[0]
        raise TransportError(f"forwarding a port (via: tunnel) is not supported over {scheme}://")

    def close_tunnels(self) -> None:
        with self._tunnels_lock:
            for tunnel in self._tunnels.values():
                tunnel.close()
            self._tunnels.clear()

    def close(self) -> None:
        """Release the connection (end of the run): most transports hold only their tunnels."""
        self.close_tunnels()


class StreamEnd:
    """How a streamed command ended, known after the stream is closed."""

    def __init__(self) -> None:
        self.rc: int | None = None
        self.stderr = b""
        self.expired = False
