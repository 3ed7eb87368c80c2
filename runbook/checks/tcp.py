"""A TCP connection: from the runner, or from inside a container to a service name.

Inside a container the probe is the first the image carries of python3's socket
module, bash's /dev/tcp, `nc -z` and busybox's nc (the official nginx image has no
python3, an alpine one only busybox); a container with none of them is a check
error that says so, see `docker_host.connect_from`. `from_service: web` probes from each container
of a compose service.
"""

from __future__ import annotations

import socket
from typing import ClassVar

from pydantic import Field

from runbook.describe.model import CheckBase, ContainerName, ContainerRef, InContainer, ServiceName
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.target import Target


class TcpCheck(CheckBase, InContainer):
    """A TCP connection, from the runner or from inside a container (by service name)."""

    kind: ClassVar[str] = "tcp"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")
    container_field: ClassVar[str] = "from_container"

    address: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="host name or IP to connect to; default: the address of the check's host "
        "(one per host when the check names a group)",
    )
    port: int = Field(gt=0, lt=65536)
    from_container: ContainerName | None = None
    # Written `from_service:` here: `service:` next to `address:` would read as the target.
    service: ServiceName | None = Field(
        default=None, alias="from_service", description="probe from each container of this compose service"
    )
    timeout: float = Field(default=3.0, gt=0, le=60)

    @property
    def needs(self) -> tuple[str, ...]:
        """Where it probes from, and what it probes on the compose network: `address: calendar-redis`
        is that container (or that service of the project), so its stop explains this failure."""
        ref = self.container_ref
        if ref is None or not self.address:
            return super().needs
        target = ContainerRef(name=self.address), ContainerRef(service=self.address, project=ref.project)
        return (*super().needs, *(each.key for each in target))


def verify(check: TcpCheck, target: Target) -> None:
    address = check.address or target.address
    if not address:
        raise CheckError(f"{target.name}: its host spec has no address; set address: on the check")
    expected = f"{address}:{check.port} accepts TCP connections"
    ref = check.container_ref
    if ref is None:
        try:
            socket.create_connection((address, check.port), timeout=check.timeout).close()
        except OSError as exc:
            raise CheckFailed(expected, f"cannot connect to {address}:{check.port}: {exc}") from None
        return
    for container in docker_host.containers(target, ref):
        reason = docker_host.connect_from(target, container, address, check.port, check.timeout)
        if reason is not None:
            raise CheckFailed(
                f"{container} reaches {expected}",
                f"{container} cannot reach {address}:{check.port}: {reason}",
            )
