"""The interface every transport implements: run with a deadline, stream, forward a port, close."""

from __future__ import annotations

import threading
import urllib.parse
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import IO, ClassVar

from runbook.host.processes import Raw, StreamEnd


class TransportError(Exception):
    """The connection failed (not the command): the host is unreachable for this run."""


class CommandLost(Exception):
    """The host took the command, then the shell running it ended before it answered: this
    command has no result, but the host answered; the next command opens a new shell (and
    finds the host unreachable then, if it is)."""


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


class Tunnel:
    """An address the runner connects to; `said()` is what the far side reported, if anything."""

    def __init__(self, host: str, port: int) -> None:
        self.local = (host, port)

    def alive(self) -> bool:
        return True

    def said(self) -> str:
        return ""

    def close(self) -> None:
        """Stop forwarding."""
