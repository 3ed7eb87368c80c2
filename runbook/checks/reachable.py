"""Step zero of every runbook: reach the server (`ssh root@...`).

The suite makes one such check per host (`reachable-<host>`) under every
marker, run first; when it fails, the host's other checks are skipped with a
pointer to it instead of each waiting for its own timeout.
"""

from __future__ import annotations

from typing import ClassVar

from runbook.describe.model import MARKERS, CheckBase
from runbook.host.target import Target


class ReachableCheck(CheckBase):
    """The host answers a trivial command."""

    kind: ClassVar[str] = "hosts"
    default_markers: ClassVar[tuple[str, ...]] = MARKERS
    describable: ClassVar[bool] = False
    reachability: ClassVar[bool] = True

    @classmethod
    def for_host(cls, name: str) -> ReachableCheck:
        """The check the suite adds for each host of a system (see kinds.reachability_for)."""
        return cls(
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
