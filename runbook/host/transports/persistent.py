"""ssh+persist://user@host?ssh_config=...: one SSH connection and one open shell per host.

Every command goes through a long-lived shell session (runbook.host.transports.shell_session)
instead of a new SSH session per command, which is what costs ssh:// and paramiko:// 45 to
250 ms a command; this transport adds about 0.4 ms (bench/RESULTS.md). Connecting, host-key
verification and the spec's options are paramiko://'s (this class extends it); streams of
big files use a channel of their own on the same connection.

- A shell that died between commands (killed, the connection dropped) is replaced and the
  command sent again: it had not started. One that dies while a command runs is a
  TransportError, as a dropped ssh:// connection is.
- At the deadline the shell's whole process group is killed (through a second channel)
  and the next command opens a new shell. Target's commands carry their own shorter
  deadline on the host, so this is the backstop for commands sent by testinfra modules.
- Commands from several threads at once each get a shell; idle shells are reused. A channel
  the server refuses (sshd's MaxSessions) is waited for on the same connection, never taken
  for a dead one.
- `testinfra_host()` serves testinfra's modules (`host.file`, `host.service`, ...) over
  the same connection, each command answering exactly as under ssh:// (`run_exact`: the
  login shell, every byte, the output of background children that still hold it), with
  a deadline of `?command_timeout=SECONDS` (60 by default; 0 for none).
  `testinfra.get_host("ssh+persist://...")` works too, with a connection of its own;
  testinfra passes on ssh_config, ssh_identity_file and timeout (the connect timeout) but
  drops the rest of the query (`host_key_check=off`, so host keys are always verified
  there; `command_timeout` is then a keyword: `get_host(spec, command_timeout=30)`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from runbook.host.processes import Raw, TransportTimeout
from runbook.host.transports.base import CommandLost, TransportError
from runbook.host.transports.paramiko import (
    ChannelRefused,
    ParamikoTransport,
    TransportBackend,
)
from runbook.host.transports.shell_session import OutputTooLarge, SessionLost, ShellSession


class PersistentSshTransport(ParamikoTransport):
    jobs_per_command = True  # see shell_session: each command is a job; its group dies with it

    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        super().__init__(spec, connect_timeout=connect_timeout)
        self._idle: list[ShellSession] = []
        self._idle_lock = threading.Lock()
        self._returned = threading.Condition(self._idle_lock)

    def _connect(self) -> Any:
        client = super()._connect()
        # Requests and replies are small packets: don't let Nagle hold them back.
        with contextlib.suppress(OSError, AttributeError):
            client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client

    # -- sessions ---------------------------------------------------------------------

    def _open_session(self) -> ShellSession:
        """A new shell on a new channel (ChannelRefused if the server has no room for one)."""
        had_connection = self._client is not None
        try:
            channel = self._channel()
        except ChannelRefused:
            raise
        except TransportError:
            if not had_connection:
                raise
            channel = self._channel()  # the old connection had died (and is closed): connect once more
        try:
            return ShellSession.start(channel, timeout=self.connect_timeout)
        except (SessionLost, TransportTimeout) as exc:
            channel.close()
            raise TransportError(f"could not start a shell session: {exc}") from None

    def _take(self, deadline: float) -> ShellSession:
        """An idle shell, else a new one; while the server refuses channels (its MaxSessions),
        the next shell another thread gives back."""
        while True:
            with self._idle_lock:
                if self._idle:
                    return self._idle.pop()
            try:
                return self._open_session()
            except ChannelRefused:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportTimeout("the server refused a new channel until the deadline") from None
                with self._idle_lock:
                    if not self._idle:
                        self._returned.wait(min(remaining, 0.2))

    def _give_back(self, session: ShellSession) -> None:
        with self._idle_lock:
            self._idle.append(session)
            self._returned.notify_all()

    def _kill(self, session: ShellSession) -> None:
        """End a shell and all it runs: sshd made the shell the leader of its process group."""
        pid = session.pid
        if pid <= 1:  # never learnt: `kill -- -0` would be our killer's own group
            session.close()
            return
        line = f"kill -KILL -- -{pid} 2>/dev/null || kill -KILL {pid}"
        with self._idle_lock:
            helper = self._idle.pop() if self._idle else None
        if helper is not None:  # an open shell needs no new channel, which MaxSessions may refuse
            try:
                helper.run(line, deadline=time.monotonic() + self.connect_timeout)
                self._give_back(helper)
            except Exception:
                helper.close()
                helper = None
        if helper is None:
            with contextlib.suppress(Exception):
                killer = self._channel()
                killer.exec_command(line)
                killer.status_event.wait(self.connect_timeout)
                killer.close()
        session.close()

    # -- commands ---------------------------------------------------------------------

    def run(self, line: str, *, timeout: float) -> Raw:
        return self._session_run(line, timeout, exact=False)

    def run_exact(self, line: str, *, timeout: float | None) -> Raw:
        """As `ssh host LINE` answers (testinfra's API): see shell_session.run_exact."""
        return self._session_run(line, timeout, exact=True)

    def _session_run(self, line: str, timeout: float | None, *, exact: bool) -> Raw:
        deadline = time.monotonic() + timeout if timeout else float("inf")
        retried = False
        while True:
            session = self._take(deadline)
            try:
                if exact:
                    raw = session.run_exact(line, deadline=deadline)
                else:
                    raw = session.run(line, deadline=deadline)
            except SessionLost as lost:
                session.close()
                if lost.started:
                    raise CommandLost(str(lost)) from None
                if retried:
                    raise TransportError(str(lost)) from None
                retried = True  # it never ran: send it to a new shell
                continue
            except TransportTimeout:
                self._kill(session)
                raise TransportTimeout(f"no answer within {timeout:g}s (the command was killed)") from None
            except OutputTooLarge:
                self._kill(session)
                raise
            except BaseException:
                session.close()
                raise
            self._give_back(session)
            return raw

    def testinfra_host(self) -> Any:
        """A testinfra host whose commands run through this transport's shells."""
        return self._testinfra_host(PersistentBackend)

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()
        super().close()


class PersistentBackend(TransportBackend):
    """testinfra's backend for ssh+persist://, so its modules run over the open shell."""

    NAME = "ssh+persist"
    transport_class = PersistentSshTransport
