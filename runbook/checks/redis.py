"""Redis (Map v12: the broker of Pub/Sub and rate limits; the worker "listens to Redis Pub/Sub").

PING answers PONG, and the channel the worker listens on has subscribers
(`PUBSUB NUMSUB`): a worker that lost its subscription still runs, only
`NUMSUB` shows it. The client is `redis-cli --no-raw` everywhere: on the runner
(`via: runner`, or `via: tunnel` through the host's SSH connection) and inside
the container (`via: exec`, the runbook's own `docker exec redis redis-cli
ping`), so one parser reads typed replies (`(error) ...`, `(integer) 3`) the
same way in all three. On the runner the password goes to redis-cli in its
environment (REDISCLI_AUTH), never on a command line; inside a container
redis-cli uses the container's own REDISCLI_AUTH, so a password in the URL is
refused there.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from runbook.describe.model import CheckBase
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.processes import Raw, TransportTimeout, environment_now, run_process
from runbook.host.routes import Reachable, route, service_container, service_host, where
from runbook.host.target import Target

DEFAULT_PORT = 6379
NUMSUB_COUNT = re.compile(r"^2\) \(integer\) (\d+)$", re.M)


class RedisCheck(CheckBase, Reachable):
    """A Redis server: answers PING, and a Pub/Sub channel has at least N subscribers."""

    kind: ClassVar[str] = "redis"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")
    aspects: ClassVar[tuple[str, ...]] = ("ping", "min_subscribers")

    url: str = Field(
        default=f"redis://127.0.0.1:{DEFAULT_PORT}/0",
        pattern=r"^rediss?://[^\s]*$",
        max_length=2048,
        description="redis://[user]:${PASSWORD_ENV}@host:port/db; in a container, only the port is used",
    )
    via: Literal["runner", "tunnel", "exec"] = Field(  # type: ignore[assignment]
        default="runner", description="runner, tunnel (through the host's SSH), exec (redis-cli in container)"
    )
    ping: bool | None = None
    min_subscribers: int | None = Field(default=None, ge=1, description="PUBSUB NUMSUB of `channel`")
    channel: str | None = Field(default=None, min_length=1, max_length=512, pattern=r"^[^\x00\n\r]+$")
    timeout: float = Field(default=5.0, gt=0, le=120)

    @model_validator(mode="after")
    def _consistent(self) -> RedisCheck:
        if (self.min_subscribers is None) != (self.channel is None):
            raise ValueError("min_subscribers: and channel: go together")
        if self.via == "exec":
            if self.container_ref is None:
                raise ValueError("via: exec runs redis-cli inside a container: set container: or service:")
            if urllib.parse.urlsplit(self.url).password:
                raise ValueError(
                    "via: exec uses the container's own REDISCLI_AUTH: a password in the URL would "
                    "be on the host's command line"
                )
        return self


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    db: int
    user: str | None
    password: str | None
    tls: bool


def parse_url(url: str) -> Server:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise CheckError(f"{url}: the port is not a number") from None
    path = parts.path.strip("/") or "0"
    if not path.isdigit():
        raise CheckError(f"{url}: the database is a number (/0), not {path!r}")
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    return Server(parts.hostname or "127.0.0.1", port, int(path), user, password, parts.scheme == "rediss")


def verify(check: RedisCheck, target: Target) -> None:
    server = parse_url(check.url)
    shown = f"Redis at {server.host}:{server.port}{where(check, target)}"
    if check.ping:
        reply = redis_cli(check, target, server, shown, "PING")
        if reply.stdout.strip() != "PONG":
            raise CheckFailed(f"{shown} answers PING with PONG", f"PING answered {reply.said()}")
        return
    assert check.channel is not None and check.min_subscribers is not None
    reply = redis_cli(check, target, server, shown, "PUBSUB", "NUMSUB", check.channel)
    counted = NUMSUB_COUNT.search(reply.stdout)
    expected = f"channel {check.channel!r} has at least {check.min_subscribers} subscriber(s) ({shown})"
    if counted is None:
        raise CheckFailed(expected, f"PUBSUB NUMSUB answered {reply.said()}")
    count = int(counted.group(1))
    if count < check.min_subscribers:
        raise CheckFailed(
            expected, f"channel {check.channel!r} has {count} subscriber(s) < {check.min_subscribers}"
        )


@dataclass(frozen=True)
class Reply:
    """What redis-cli printed: typed replies on stdout, its own complaints (AUTH failed) on stderr."""

    stdout: str
    stderr: str

    def said(self) -> str:
        text = " ".join(self.stdout.split())
        complaint = " ".join(self.stderr.split())
        if text and complaint:
            return f"{text} ({complaint})"[:400]
        return (text or complaint or "nothing")[:400]


def redis_cli(check: RedisCheck, target: Target, server: Server, shown: str, *command: str) -> Reply:
    """redis-cli's output of one command, run where the check says; a failure if it cannot connect."""
    if check.via == "exec":
        assert check.container_ref is not None
        container = service_container(target, check.container_ref)
        options = f"-p {server.port} -n {server.db}" + (" --tls" if server.tls else "")
        template = f"redis-cli --no-raw {options}" + " %s" * len(command)
        result = docker_host.exec_in(target, container, template, *command, timeout=check.timeout)
        reply, rc = Reply(result.stdout, result.stderr), result.rc
    else:
        tunnel = route(check, target, server.host, server.port)
        raw = _on_runner(check, server, tunnel.local, command, shown)
        said = tunnel.said()
        stderr = raw.stderr.decode(errors="replace") + (f" (tunnel: {said[-300:]})" if said else "")
        reply, rc = Reply(raw.stdout.decode(errors="replace"), stderr), raw.rc
    if rc != 0 and not reply.stdout.strip():  # redis-cli could not connect at all
        raise CheckFailed(f"{shown} answers", f"redis-cli cannot reach Redis: {reply.said()}")
    return reply


def _on_runner(
    check: RedisCheck, server: Server, address: tuple[str, int], command: tuple[str, ...], shown: str
) -> Raw:
    host, port = address
    argv = ["redis-cli", "--no-raw", "-h", host, "-p", str(port), "-n", str(server.db)]
    if server.tls:
        argv += ["--tls", "--sni", service_host(server.host)]
    if server.user:
        argv += ["--user", server.user]
    environment = {**environment_now(), "REDISCLI_AUTH": server.password} if server.password else None
    try:
        return run_process([*argv, *command], timeout=check.timeout, env=environment)
    except FileNotFoundError:
        raise CheckError("redis-cli is not installed on the runner (apt-get install redis-tools)") from None
    except TransportTimeout:
        raise CheckFailed(f"{shown} answers", f"no answer within {check.timeout:g}s") from None
