"""How the runner reaches a service (PostgreSQL, Redis): directly, or through a host's connection.

`via: runner` connects from this machine to the address as written. `via:
tunnel` goes through the SSH connection the suite already has to the check's
host (a forward opened once per run and address, closed with the connection),
to the address as that host sees it. `container: NAME` or `service: db` (a
compose service, as the other container kinds name it) says the service runs
in that container on the host: the tunnel then ends at the container's address
(`docker inspect`), so a database that publishes no port is reached as it is.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from runbook.describe.model import ContainerName, ContainerRef, InContainer
from runbook.errors import CheckError
from runbook.host import docker_host
from runbook.host.docker_host import Container
from runbook.host.target import Target
from runbook.host.transports import TransportError
from runbook.host.transports.base import Tunnel

# A host name, an IPv4 or a bracket-less IPv6 address: never an option, never two ssh -L fields.
SERVICE_HOST = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}|[0-9A-Fa-f:.]{2,45})$")


class Reachable(InContainer):
    """The fields of a check that talks to a service: how the runner gets to it."""

    via: Literal["runner", "tunnel"] = Field(
        default="runner",
        description="runner: connect from this machine; tunnel: through the SSH connection to `host`",
    )
    container: ContainerName | None = Field(
        default=None, description="the service runs in this container on the host (the tunnel ends there)"
    )

    @model_validator(mode="after")
    def _container_is_behind_a_host(self) -> Reachable:
        if self.container_ref is not None and self.via == "runner":
            raise ValueError("container: or service: is reached through the host: set via: tunnel")
        return self


def service_host(host: str) -> str:
    """The host part of a DSN or URL, refused (at run time, a failure of that check) when odd."""
    if not SERVICE_HOST.match(host):
        raise CheckError(f"{host!r} is not a host name or IP address")
    return host


def route(check: Reachable, target: Target, host: str, port: int) -> Tunnel:
    """The local address to connect to for host:port as the check describes it."""
    if check.via == "runner":
        return Tunnel(service_host(host), port)
    if check.container_ref is not None:
        host = container_address(target, service_container(target, check.container_ref))
    if target.unreachable is not None:
        raise target.unreachable
    try:
        return target.connection.transport.tunnel(service_host(host), port)
    except TransportError as exc:
        raise CheckError(f"cannot open a tunnel through {target.name} to {host}:{port}: {exc}") from None


def where(check: Reachable, target: Target) -> str:
    """How messages add the route to an address: '' or ' (container db, through server's SSH connection)'."""
    if check.via == "runner":
        return ""
    ref = check.container_ref
    inside = f"{'container ' if ref.name else ''}{ref}, " if ref else ""
    return f" ({inside}through {target.name}'s SSH connection)"


def service_container(target: Target, ref: ContainerRef) -> Container:
    """The container named, or the first container of the compose service (a database has one)."""
    return docker_host.containers(target, ref)[0]


def container_address(target: Target, container: Container) -> str:
    """The container's IP address on its first network (by name), or loopback for host networking."""
    info = docker_host.require_running(target, container)
    if (info.get("HostConfig") or {}).get("NetworkMode") == "host":
        return "127.0.0.1"
    return docker_host.address(target, container)
