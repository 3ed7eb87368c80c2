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
- Commands from several threads at once each get a shell; idle shells are reused.
- `testinfra_host()` serves testinfra's modules (`host.file`, `host.service`, ...) over
  the same connection. `testinfra.get_host("ssh+persist://...")` works too, with a
  connection of its own; testinfra passes on ssh_config and ssh_identity_file but drops
  `host_key_check=off`, so host keys are always verified there.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse
from typing import Any

from testinfra.backend.base import BaseBackend, CommandResult

from runbook.host.processes import Raw, TransportTimeout
from runbook.host.transports.base import CommandLost, TransportError, spec_options
from runbook.host.transports.paramiko import ParamikoTransport
from runbook.host.transports.shell_session import SessionLost, ShellSession

# The deadline of a command sent by a testinfra module (testinfra itself has none).
TESTINFRA_COMMAND_TIMEOUT = 60.0


class PersistentSshTransport(ParamikoTransport):
    jobs_per_command = True  # see shell_session: each command is a job; its group dies with it

    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        super().__init__(spec, connect_timeout=connect_timeout)
        self._idle: list[ShellSession] = []
        self._idle_lock = threading.Lock()

    def _connect(self) -> Any:
        client = super()._connect()
        # Requests and replies are small packets: don't let Nagle hold them back.
        with contextlib.suppress(OSError, AttributeError):
            client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client

    # -- sessions ---------------------------------------------------------------------

    def _open_session(self) -> ShellSession:
        had_connection = self._client is not None
        try:
            channel = self._channel()
        except TransportError:
            if not had_connection:
                raise
            channel = self._channel()  # the old connection had died: connect once more
        try:
            return ShellSession.start(channel, timeout=self.connect_timeout)
        except (SessionLost, TransportTimeout) as exc:
            channel.close()
            raise TransportError(f"could not start a shell session: {exc}") from None

    def _take(self) -> ShellSession:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        return self._open_session()

    def _give_back(self, session: ShellSession) -> None:
        with self._idle_lock:
            self._idle.append(session)

    def _kill(self, session: ShellSession) -> None:
        """End a shell and all it runs: sshd made the shell the leader of its process group."""
        pid = session.pid
        if pid <= 1:  # never learnt: `kill -- -0` would be our killer's own group
            session.close()
            return
        with contextlib.suppress(Exception):
            killer = self._channel()
            killer.exec_command(f"kill -KILL -- -{pid} 2>/dev/null || kill -KILL {pid}")
            killer.status_event.wait(self.connect_timeout)
            killer.close()
        session.close()

    # -- commands ---------------------------------------------------------------------

    def run(self, line: str, *, timeout: float) -> Raw:
        deadline = time.monotonic() + timeout
        retried = False
        while True:
            session = self._take()
            try:
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
            except BaseException:
                session.close()
                raise
            self._give_back(session)
            return raw

    def testinfra_host(self) -> Any:
        """A testinfra host whose commands run through this transport's shells."""
        from testinfra.host import Host

        options = spec_options(self.spec)
        address = self.spec.split("://", 1)[1].split("?", 1)[0]
        sudo = options.get("sudo", "").lower() == "true"
        return Host(PersistentBackend(address, sudo=sudo, sudo_user=options.get("sudo_user"), transport=self))

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()
        super().close()


class PersistentBackend(BaseBackend):
    """testinfra's backend for ssh+persist://, so its modules run over the open shell."""

    NAME = "ssh+persist"

    def __init__(
        self, hostspec: str, *args: Any, transport: PersistentSshTransport | None = None, **kwargs: Any
    ):
        super().__init__(hostspec, *args, **kwargs)
        if transport is None:  # built by testinfra.get_host(): the options testinfra passed on
            kept = {key: kwargs[key] for key in ("ssh_config", "ssh_identity_file") if key in kwargs}
            query = f"?{urllib.parse.urlencode(kept)}" if kept else ""
            connect_timeout = float(kwargs.get("timeout", 10))
            transport = PersistentSshTransport(
                f"ssh+persist://{hostspec}{query}", connect_timeout=connect_timeout
            )
        self.transport = transport

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        # -n: never wait for a password prompt that nobody can answer.
        if sudo_user is None:
            return self.quote("sudo -n /bin/sh -c %s", command)
        return self.quote("sudo -n -u %s /bin/sh -c %s", sudo_user, command)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        line = self.get_command(command, *args)
        raw = self.transport.run(line, timeout=TESTINFRA_COMMAND_TIMEOUT)
        return self.result(raw.rc, self.encode(line), raw.stdout, raw.stderr)
