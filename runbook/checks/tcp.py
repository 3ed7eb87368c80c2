"""A TCP connection: from the runner, or from inside a container to a service name.

Inside a container the probe is python3's socket module (the calendar bot's
image is Python; the runbook itself runs `docker exec telegram-bot python -c`).
"""

from __future__ import annotations

import socket
from typing import ClassVar

from pydantic import Field

from runbook import docker_host
from runbook.hosts import Target
from runbook.model import CheckBase, ContainerName
from runbook.outcome import CheckFailed


class TcpCheck(CheckBase):
    """A TCP connection, from the runner or from inside a container (by service name)."""

    kind: ClassVar[str] = "tcp"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")

    address: str = Field(min_length=1, max_length=255, description="host name or IP to connect to")
    port: int = Field(gt=0, lt=65536)
    from_container: ContainerName | None = None
    timeout: float = Field(default=3.0, gt=0, le=60)


PROBE = (
    "import socket,sys\n"
    "try:\n"
    " socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
    "except OSError as e:\n"
    " print(e); sys.exit(1)\n"
)


def verify(check: TcpCheck, target: Target) -> None:
    expected = f"{check.address}:{check.port} accepts TCP connections"
    if check.from_container is None:
        try:
            socket.create_connection((check.address, check.port), timeout=check.timeout).close()
        except OSError as exc:
            raise CheckFailed(expected, f"cannot connect to {check.address}:{check.port}: {exc}") from None
        return
    result = docker_host.exec_in(
        target,
        check.from_container,
        "python3 -c %s %s %s %s",
        PROBE,
        check.address,
        str(check.port),
        str(check.timeout),
        timeout=check.timeout + 10,
    )
    if result.rc != 0:
        reason = (result.stdout + result.stderr).strip()[:300] or f"exit {result.rc}"
        raise CheckFailed(
            f"{check.from_container} reaches {expected}",
            f"{check.from_container} cannot reach {check.address}:{check.port}: {reason}",
        )
