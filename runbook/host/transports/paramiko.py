"""paramiko://user@host?ssh_config=...: one SSH connection for the run, a channel per command.

The client is built here, not by testinfra's backend: host keys are verified
against the known_hosts files (~/.ssh/known_hosts and the ssh_config's
UserKnownHostsFile) and an unknown key is refused, unless the spec says
`host_key_check=off` (shown in the report). Output is read from both channels
with a cap and one total deadline.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from runbook.host.processes import CHUNK, Capped, Raw, StreamEnd, TransportTimeout
from runbook.host.transports.base import Transport, TransportError, Tunnel, host_key_checking, spec_options
from runbook.host.transports.tunnel import ChannelTunnel


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
        import paramiko

        try:
            return self.client.get_transport().open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            with self._lock:
                self._client = None
            raise TransportError(f"{type(exc).__name__}: {exc}") from None

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
        channel = self._channel()
        stdout, stderr = Capped(), Capped()
        try:
            self._exec(channel, line)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportTimeout(f"no answer within {timeout:g}s")
                # The channel's fileno is signalled for stdout, stderr and its end alike.
                select.select([channel], [], [], min(remaining, 1.0))
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

    @contextlib.contextmanager
    def stream(self, line: str, *, timeout: float) -> Iterator[tuple[IO[bytes], StreamEnd]]:
        channel = self._channel()
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
