"""Local forwards to an address as a host sees it: the database behind a server's SSH.

A `Tunnel` is a listener on 127.0.0.1 (an ephemeral port) whose connections
come out on the far side of a transport's connection: `ssh -N -L` for ssh://
(its process group killed at close), one direct-tcpip channel per accepted
socket for paramiko://. local:// needs none: the address is reached as it is.
Most production databases are not exposed; this is how the suite reaches them
without a VPN, and only for the run (the transport closes its tunnels).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any

from runbook.host.processes import Capped, child_environment, kill_group, readable
from runbook.host.transports.base import TransportError, Tunnel

LOOPBACK = "127.0.0.1"
# What a tunnel keeps of what the far side said (ssh's stderr, refused channels), for messages.
SAID_CAP = 16 << 10


class SshTunnel(Tunnel):
    """`ssh -N -L 127.0.0.1:PORT:HOST:HOSTPORT`, ready once ssh holds the local port."""

    def __init__(
        self,
        ssh_argv: list[str],
        destination: str,
        remote: tuple[str, int],
        *,
        env: dict[str, str] | None,
        timeout: float,
    ) -> None:
        super().__init__(LOOPBACK, _free_port())
        host, port = remote
        forward = f"{LOOPBACK}:{self.local[1]}:{_bracketed(host)}:{port}"
        argv = [*ssh_argv, "-N", "-o", "ExitOnForwardFailure=yes", "-L", forward, "--", destination]
        # ssh's stderr (refused channels, a lost connection) goes to a file: said() reads its end.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the tunnel
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            start_new_session=True,
            env=child_environment(env),
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = self.said() or "no reason given"
                self.close()
                raise TransportError(f"ssh -L exited {self.process.returncode}: {said}")
            if _port_taken(self.local[1]):
                return
            time.sleep(0.05)
        said = self.said()
        self.close()
        raise TransportError(f"ssh -L did not open its local port within {timeout:g}s: {said}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def said(self) -> str:
        if self.stderr.closed:
            return ""
        size = os.fstat(self.stderr.fileno()).st_size
        tail = os.pread(self.stderr.fileno(), SAID_CAP, max(0, size - SAID_CAP))
        return tail.decode(errors="replace").strip()

    def close(self) -> None:
        kill_group(self.process)
        self.process.wait()
        self.stderr.close()


class ChannelTunnel(Tunnel):
    """A local listener; each accepted socket is pumped through a direct-tcpip channel of `ssh`."""

    def __init__(self, ssh: Any, remote: tuple[str, int], *, timeout: float) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        super().__init__(LOOPBACK, self.listener.getsockname()[1])
        self.ssh = ssh  # a paramiko.Transport
        self.remote = remote
        self.timeout = timeout
        self.problems = Capped(SAID_CAP)
        self.closed = threading.Event()
        self.open: set[Any] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name=f"runbook: tunnel {remote}").start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, peer = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, peer), daemon=True).start()

    def _serve(self, client: socket.socket, peer: tuple[str, int]) -> None:
        try:
            channel = self.ssh.open_channel("direct-tcpip", self.remote, peer, timeout=self.timeout)
        except Exception as exc:  # paramiko's ChannelException, SSHException, EOFError, OSError
            self.problems.add(f"channel to {self.remote[0]}:{self.remote[1]}: {exc}\n".encode())
            client.close()
            return
        with self.lock:
            self.open |= {client, channel}
        try:
            _pump(client, channel, self.closed)
        finally:
            with self.lock:
                self.open -= {client, channel}
            # The run's end may have closed the connection first: closing the channel then tells
            # paramiko to send on a dead transport (EOFError in this thread, seen in make test).
            with contextlib.suppress(Exception):
                channel.close()
            client.close()

    def alive(self) -> bool:
        return not self.closed.is_set() and bool(self.ssh.is_active())

    def said(self) -> str:
        return self.problems.value().decode(errors="replace").strip()

    def close(self) -> None:
        self.closed.set()
        # shutdown() first: close() alone leaves a listener that a blocked accept() still holds.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for end in list(self.open):
                with contextlib.suppress(Exception):
                    end.close()


def _pump(client: socket.socket, channel: Any, closed: threading.Event) -> None:
    """Copy bytes both ways until either side ends, fails, or the tunnel is closed."""
    ends = [client, channel]
    with contextlib.suppress(OSError, EOFError, ValueError):
        while not closed.is_set():
            for end in readable(ends, 0.5):
                data = end.recv(1 << 16)
                if not data:
                    return
                (channel if end is client else client).sendall(data)


def _free_port() -> int:
    """A loopback port nobody holds now (ssh binds it next; ExitOnForwardFailure covers a race)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _port_taken(port: int) -> bool:
    """True once something listens on the port. No connection is made to find out: with
    SO_REUSEADDR a bind fails only against a listener, so this probe never takes the port from ssh."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
