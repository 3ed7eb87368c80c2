"""A TCP connection: from the runner, or from inside a container to a service name.

Inside a container the probe is python3's socket module (the calendar bot's
image is Python; the runbook itself runs `docker exec telegram-bot python -c`).
"""

from __future__ import annotations

import socket

from runbook.hosts import Target
from runbook.outcome import CheckFailed
from runbook.schema import TcpCheck

from .containers import require_running

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
    require_running(target, check.from_container)
    result = target.run(
        "docker exec %s python3 -c %s %s %s %s",
        check.from_container,
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
