"""Step zero of every runbook: reach the server (`ssh root@...`).

The suite makes one such check per host (`reachable-<host>`) under every
marker, run first; when it fails, the host's other checks are skipped with a
pointer to it instead of each waiting for its own timeout.
"""

from __future__ import annotations

from typing import ClassVar

from runbook.describe.model import MARKERS, CheckBase
from runbook.host.target import Target

KIND = "hosts"


class ReachableCheck(CheckBase):
    """The host answers a trivial command."""

    kind: ClassVar[str] = KIND
    default_markers: ClassVar[tuple[str, ...]] = MARKERS
    describable: ClassVar[bool] = False


def for_host(name: str) -> ReachableCheck:
    return ReachableCheck(
        id=f"reachable-{name}",
        title=f"Host {name} answers",
        severity="P1",
        section="connection (ssh to the server)",
        remedy="Check that the host is up and reachable over its connection "
        "(ssh, network, credentials); nothing else on it can be checked until then.",
        host=name,
    )


def verify(check: ReachableCheck, target: Target) -> None:
    target.check_reachable()
