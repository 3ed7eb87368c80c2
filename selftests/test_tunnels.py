"""Tunnels through a real sshd on loopback: ssh:// (`ssh -N -L`) and paramiko:// (direct-tcpip).

A database that publishes no port is reached through the SSH connection the
suite already has: one forward per connection and address, reopened when it
died, closed with the connection at the end of the run. What the far side said
(a refused channel) reaches the check's message.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook.checks import postgres, redis, restore
from runbook.checks.postgres import PostgresCheck
from runbook.checks.redis import RedisCheck
from runbook.checks.restore import RestoreCheck
from runbook.errors import CheckError, CheckFailed
from runbook.host.target import Target
from runbook.host.transports.tunnel import ChannelTunnel, SshTunnel
from selftests.data_servers import Postgres, Redis, free_port, pg_dump
from selftests.sshd import LoopbackSshd

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "1.", "remedy": "fix it"}
SCHEMES = ["ssh", "paramiko"]


@pytest.fixture(params=SCHEMES)
def host(request: pytest.FixtureRequest, sshd: LoopbackSshd) -> Iterator[Target]:
    target = Target("server", sshd.spec(request.param), command_timeout=30, connect_timeout=5)
    yield target
    target.connection.close()


def tunnelled(postgres_server: Postgres, **fields: Any) -> PostgresCheck:
    return PostgresCheck(**COMMON, id="db", dsn=postgres_server.dsn(), via="tunnel", **fields)


@pytest.mark.slow
def test_postgres_through_the_hosts_ssh(postgres_server: Postgres, host: Target) -> None:
    postgres.verify(tunnelled(postgres_server, select_one=True, max_connect_ms=5000), host)
    postgres.verify(tunnelled(postgres_server, tables=["admin_audit_log"]), host)
    tunnels = host.connection.transport._tunnels
    assert list(tunnels) == [("127.0.0.1", postgres_server.port)], "one forward per address, shared by checks"
    assert isinstance(tunnels[("127.0.0.1", postgres_server.port)], SshTunnel | ChannelTunnel)


@pytest.mark.slow
def test_tunnels_close_with_the_connection(postgres_server: Postgres, host: Target) -> None:
    postgres.verify(tunnelled(postgres_server, select_one=True), host)
    tunnel = host.connection.transport._tunnels[("127.0.0.1", postgres_server.port)]
    host.connection.close()
    assert not tunnel.alive()
    with pytest.raises(OSError):
        socket.create_connection(tunnel.local, timeout=2).close()
    if isinstance(tunnel, SshTunnel):
        assert tunnel.process.poll() is not None


@pytest.mark.slow
def test_a_dead_ssh_forward_is_opened_again(postgres_server: Postgres, sshd: LoopbackSshd) -> None:
    target = Target("server", sshd.spec("ssh"), command_timeout=30, connect_timeout=5)
    try:
        postgres.verify(tunnelled(postgres_server, select_one=True), target)
        first = target.connection.transport._tunnels[("127.0.0.1", postgres_server.port)]
        assert isinstance(first, SshTunnel)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        postgres.verify(tunnelled(postgres_server, select_one=True), target)
        assert target.connection.transport._tunnels[("127.0.0.1", postgres_server.port)] is not first
    finally:
        target.connection.close()


@pytest.mark.slow
def test_a_refused_channel_is_in_the_message(postgres_server: Postgres, host: Target) -> None:
    closed = free_port()
    check = PostgresCheck(
        **COMMON, id="db", dsn=postgres_server.dsn(port=closed), via="tunnel", select_one=True
    )
    with pytest.raises(
        CheckFailed, match=r"through server's SSH connection.*tunnel: .*([Cc]onnect failed|refused)"
    ):
        postgres.verify(check, host)


@pytest.mark.slow
def test_an_unreachable_host_gives_no_tunnel(postgres_server: Postgres) -> None:
    target = Target("server", f"ssh://root@127.0.0.1:{free_port()}", command_timeout=5, connect_timeout=2)
    with pytest.raises(
        CheckError, match=r"cannot open a tunnel through server .*ssh -L exited 255: .*refused"
    ):
        postgres.verify(tunnelled(postgres_server, select_one=True), target)


def test_redis_through_the_hosts_ssh(redis_server: Redis, host: Target) -> None:
    check = RedisCheck(**COMMON, id="redis", url=redis_server.url(), via="tunnel", ping=True)
    redis.verify(check, host)
    with redis_server.subscribe("map:events"):
        listening = RedisCheck(
            **COMMON,
            id="worker",
            url=redis_server.url(),
            via="tunnel",
            channel="map:events",
            min_subscribers=1,
        )
        redis.verify(listening, host)


@pytest.mark.slow
def test_restore_through_the_hosts_ssh(postgres_server: Postgres, sshd: LoopbackSshd, tmp_path: Path) -> None:
    """The dump streams from the host's cat, pg_restore on the runner reaches the server by the tunnel."""
    dumps = tmp_path / "backups"
    dumps.mkdir()
    pg_dump(postgres_server, dumps / "pgdump_20261123_030000.dump")
    target = Target("server", sshd.spec("ssh"), command_timeout=30, connect_timeout=5)
    check = RestoreCheck(
        **COMMON,
        id="restore",
        directory=str(dumps),
        dsn=postgres_server.dsn(),
        via="tunnel",
        tables=["users", "markers"],
    )
    try:
        restore.verify(check, target)
    finally:
        target.connection.close()
    assert not [name for name in postgres_server.databases() if name.startswith(restore.SCRATCH_PREFIX)]
