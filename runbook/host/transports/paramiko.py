"""paramiko://user@host?ssh_config=...: one SSH connection for the run, a channel per command.

The client is built here, not by testinfra's backend: host keys are verified
against the known_hosts files (~/.ssh/known_hosts and the ssh_config's
UserKnownHostsFile) and an unknown key is refused, unless the spec says
`host_key_check=off` (shown in the report). Output is read from both channels
with a cap and one total deadline.

testinfra's modules (`target.host`) run on the same connection through `TransportBackend`:
each command answers exactly as under ssh:// (`run_exact`: unchanged, in the login shell
that sshd starts, stdin at its end, every byte), within `?command_timeout=SECONDS`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import IO, Any

from testinfra.backend.base import BaseBackend, CommandResult

from runbook.host.processes import CHUNK, Capped, Raw, StreamEnd, TransportTimeout, readable
from runbook.host.transports.base import Transport, TransportError, Tunnel, host_key_checking, spec_options
from runbook.host.transports.shell_session import EXACT_LIMIT, Whole
from runbook.host.transports.tunnel import ChannelTunnel

# The deadline of a command sent through testinfra's API unless the spec says
# `?command_timeout=SECONDS` (testinfra's own ssh:// has none; 0 means none here too).
TESTINFRA_COMMAND_TIMEOUT = 60.0


class ChannelRefused(TransportError):
    """The server refused a new channel (sshd's MaxSessions): the connection itself is fine."""


def command_timeout_option(options: dict[str, str]) -> float | None:
    """`?command_timeout=SECONDS` of a host spec: the deadline of testinfra's commands (0: none)."""
    text = options.get("command_timeout")
    if text is None:
        return TESTINFRA_COMMAND_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        raise TransportError(f"command_timeout={text!r} is not a number of seconds") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise TransportError(f"command_timeout={text!r} must be a number of seconds (0 for none)")
    return seconds or None


class ParamikoTransport(Transport):
    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        super().__init__(spec, connect_timeout=connect_timeout)
        from testinfra.backend.base import BaseBackend

        self.address = BaseBackend.parse_hostspec(spec.split("://", 1)[1].split("?", 1)[0])
        self.options = spec_options(spec)
        self._client: Any = None
        self._lock = threading.Lock()

    # -- connecting -------------------------------------------------------------------

    def _settings(self, paramiko: Any) -> tuple[dict[str, Any], list[str], bool]:
        """connect() arguments, known_hosts files, and whether host keys are checked."""
        settings: dict[str, Any] = {
            "hostname": self.address.name,
            "port": int(self.address.port) if self.address.port else 22,
            "username": self.address.user,
            "password": self.address.password,
            "timeout": self.connect_timeout,
            "banner_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout,
            "allow_agent": False,
        }
        known_hosts = [os.path.expanduser("~/.ssh/known_hosts")]
        check_keys = host_key_checking(self.spec)
        config_path = os.path.expanduser(self.options.get("ssh_config", "~/.ssh/config"))
        if os.path.isfile(config_path):
            config = paramiko.SSHConfig.from_path(config_path)
            found = config.lookup(self.address.name)
            settings["hostname"] = found.get("hostname", settings["hostname"])
            if found.get("user") and not self.address.user:
                settings["username"] = found["user"]
            if found.get("port") and not self.address.port:
                settings["port"] = int(found["port"])
            if found.get("identityfile"):
                settings["key_filename"] = [os.path.expanduser(path) for path in found["identityfile"]]
            if found.get("userknownhostsfile"):
                known_hosts += [os.path.expanduser(path) for path in found["userknownhostsfile"].split()]
            if found.get("proxycommand"):
                settings["sock"] = paramiko.ProxyCommand(found["proxycommand"])
            if found.get("stricthostkeychecking", "").lower() == "no":
                check_keys = False
        if "ssh_identity_file" in self.options:
            settings["key_filename"] = os.path.expanduser(self.options["ssh_identity_file"])
        return settings, known_hosts, check_keys

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        import paramiko

        settings, known_hosts, check_keys = self._settings(paramiko)
        client = paramiko.SSHClient()
        for path in known_hosts:
            if os.path.isfile(path):
                with contextlib.suppress(OSError, paramiko.SSHException):
                    client.load_host_keys(path)
        client.set_missing_host_key_policy(
            paramiko.RejectPolicy() if check_keys else paramiko.AutoAddPolicy()
        )
        try:
            client.connect(**settings)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(5)
        return client

    def _channel(self) -> Any:
        """A new session channel; ChannelRefused if the server said no while the connection lives."""
        import paramiko

        client = self.client
        try:
            return client.get_transport().open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            # paramiko keeps one failure for the whole connection: with several threads opening
            # channels, a refusal may reach another thread as a bare SSHException. The
            # connection's state, not the exception's kind, tells a refusal from a dead link.
            ssh = client.get_transport()
            if ssh is not None and ssh.is_active():
                raise ChannelRefused(f"the server refused a channel: {exc or type(exc).__name__}") from None
            self._drop(client)
            raise TransportError(f"{type(exc).__name__}: {exc}") from None

    def _drop(self, client: Any) -> None:
        """Forget a dead connection, closed so that nothing it opened stays established."""
        with self._lock:
            if self._client is client:
                self._client = None
        with contextlib.suppress(Exception):
            client.close()

    def _channel_until(self, deadline: float) -> Any:
        """A new session channel, waiting while the server refuses one (its MaxSessions): another
        command's channel closes soon. TransportTimeout if none came by the deadline."""
        while True:
            try:
                return self._channel()
            except ChannelRefused:
                if time.monotonic() >= deadline:
                    raise TransportTimeout("the server refused a new channel until the deadline") from None
                time.sleep(0.1)

    @property
    def command_timeout(self) -> float | None:
        """The deadline of commands sent through testinfra's API (`?command_timeout=`)."""
        return command_timeout_option(self.options)

    # -- commands ---------------------------------------------------------------------

    @staticmethod
    def _exec(channel: Any, line: str) -> None:
        """Run `line` with stdin at /dev/null on the host, and send no EOF of our own.

        Why: paramiko builds a channel's EOF under its lock but sends it after, so a command that
        ends at once can have the server's CLOSE answered before our EOF goes out. sshd takes an
        EOF for a channel it already freed as a protocol error and drops the whole connection,
        ending every other channel on it (the persistent shell's too).
        """
        channel.exec_command(f"exec </dev/null; {line}")

    def run(self, line: str, *, timeout: float) -> Raw:
        deadline = time.monotonic() + timeout
        channel = self._channel_until(deadline)
        stdout, stderr = Capped(), Capped()
        try:
            self._exec(channel, line)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportTimeout(f"no answer within {timeout:g}s")
                # The channel's fileno is signalled for stdout, stderr and its end alike.
                readable([channel], min(remaining, 1.0))
                while channel.recv_ready():
                    stdout.add(channel.recv(CHUNK))
                while channel.recv_stderr_ready():
                    stderr.add(channel.recv_stderr(CHUNK))
                if channel.exit_status_ready() and not (channel.recv_ready() or channel.recv_stderr_ready()):
                    break
            rc = channel.recv_exit_status()
        except (OSError, EOFError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        finally:
            channel.close()
        return Raw(rc, stdout.value(), stderr.value(), stdout.dropped + stderr.dropped)

    def run_exact(self, line: str, *, timeout: float | None) -> Raw:
        """`line` as `ssh host LINE` runs it: unchanged, its stdin at its end, every byte kept."""
        deadline = time.monotonic() + timeout if timeout else float("inf")
        channel = self._channel_until(deadline)
        budget = [EXACT_LIMIT]
        stdout, stderr = Whole(budget), Whole(budget)
        try:
            channel.exec_command(line)
            _send_eof(channel)
            # Done once the server said EOF (every holder of the output closed) and the exit status.
            while not (channel.closed or (channel.eof_received and channel.exit_status_ready())):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportTimeout(f"no answer within {timeout:g}s")
                readable([channel], min(remaining, 1.0))
                _drain(channel, stdout, stderr)
            _drain(channel, stdout, stderr)
            rc = channel.recv_exit_status()
        except (OSError, EOFError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        finally:
            channel.close()
        return Raw(rc, stdout.value(), stderr.value())

    def testinfra_host(self) -> Any:
        """A testinfra host whose commands run over this transport's connection."""
        return self._testinfra_host(TransportBackend)

    def _testinfra_host(self, backend_class: type[TransportBackend]) -> Any:
        from testinfra.host import Host

        address = self.spec.split("://", 1)[1].split("?", 1)[0]
        sudo = self.options.get("sudo", "").lower() == "true"
        backend = backend_class(address, sudo=sudo, sudo_user=self.options.get("sudo_user"), transport=self)
        return Host(backend)

    @contextlib.contextmanager
    def stream(self, line: str, *, timeout: float) -> Iterator[tuple[IO[bytes], StreamEnd]]:
        channel = self._channel_until(time.monotonic() + timeout)
        end = StreamEnd()

        def expire() -> None:
            end.expired = True
            channel.close()

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            channel.settimeout(timeout)
            self._exec(channel, line)
            yield channel.makefile("rb"), end
        finally:
            timer.cancel()
            if channel.exit_status_ready():
                end.rc = channel.recv_exit_status()
                with contextlib.suppress(OSError):
                    end.stderr = channel.recv_stderr(64 << 10) if channel.recv_stderr_ready() else b""
            channel.close()

    def open_tunnel(self, host: str, port: int) -> Tunnel:
        import paramiko

        try:
            ssh = self.client.get_transport()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        if ssh is None or not ssh.is_active():
            with self._lock:
                self._client = None
            raise TransportError("the SSH connection is closed")
        return ChannelTunnel(ssh, (host, port), timeout=self.connect_timeout)

    def close(self) -> None:
        self.close_tunnels()
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _drain(channel: Any, stdout: Whole, stderr: Whole) -> None:
    while channel.recv_ready():
        stdout.add(channel.recv(CHUNK))
    while channel.recv_stderr_ready():
        stderr.add(channel.recv_stderr(CHUNK))


def _send_eof(channel: Any) -> None:
    """End the command's stdin, as ssh does when its own stdin ends.

    Why under the channel's lock: paramiko answers the server's CLOSE from its own thread, and
    an EOF sent after that CLOSE refers to a channel sshd has freed, which sshd takes for a
    protocol error and drops the whole connection. Holding the lock while the EOF goes out
    orders it before any CLOSE of ours; a channel already closed needs none.
    """
    if not all(hasattr(channel, name) for name in ("lock", "_send_eof", "transport")):
        channel.shutdown_write()  # a paramiko without these internals: its own (racy) way
        return
    with channel.lock:
        if channel.closed:
            return
        message = channel._send_eof()
        if message is not None:
            channel.transport._send_user_message(message)


class TransportBackend(BaseBackend):
    """testinfra's backend over one of the suite's transports: testinfra's modules and
    `host.run` on the suite's connection, answering as ssh:// does, within the spec's
    `command_timeout`. Built by `testinfra.get_host()` it opens a transport of its own."""

    NAME = "paramiko"
    transport_class: type[ParamikoTransport] = ParamikoTransport

    def __init__(self, hostspec: str, *args: Any, transport: ParamikoTransport | None = None, **kwargs: Any):
        super().__init__(hostspec, *args, **kwargs)
        if transport is None:  # built by testinfra.get_host(): the options testinfra passed on
            kept = {
                key: kwargs[key]
                for key in ("ssh_config", "ssh_identity_file", "command_timeout")
                if key in kwargs
            }
            query = f"?{urllib.parse.urlencode(kept)}" if kept else ""
            connect_timeout = float(kwargs.get("timeout", 10))
            transport = self.transport_class(
                f"{self.NAME}://{hostspec}{query}", connect_timeout=connect_timeout
            )
        self.transport = transport

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        # -n: never wait for a password prompt that nobody can answer.
        if sudo_user is None:
            return self.quote("sudo -n /bin/sh -c %s", command)
        return self.quote("sudo -n -u %s /bin/sh -c %s", sudo_user, command)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        line = self.get_command(command, *args)
        raw = self.transport.run_exact(line, timeout=self.transport.command_timeout)
        return self.result(raw.rc, self.encode(line), raw.stdout, raw.stderr)
