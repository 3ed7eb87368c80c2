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
    def for_host(cls, name: str, spec: str = "") -> ReachableCheck:
        """The check the suite adds for each host of a system (see kinds.reachability_for)."""
        how, remedy = _connection(spec)
        return cls(
            id=f"reachable-{name.lower()}",  # ids are lower case; host names may not be (Web01)
            title=f"Host {name} answers",
            severity="P1",
            section=f"connection ({how})",
            remedy=f"{remedy}; nothing else on it can be checked until then.",
            host=name,
        )


def _connection(spec: str) -> tuple[str, str]:
    """How the host is reached, and what to look at when it does not answer, by its spec's scheme."""
    scheme = spec.split("://", 1)[0] if "://" in spec else "local"
    if scheme == "local":
        return "this machine", "Check that the runner can start a shell here (processes, memory, disk)"
    if scheme in {"docker", "podman"}:
        return f"{scheme} exec into the container", f"Check that the container runs and {scheme} answers"
    if scheme in {"kubectl", "openshift"}:
        return f"{scheme} exec into the pod", f"Check that the pod runs and {scheme} can reach the cluster"
    return (
        "ssh to the server",
        "Check that the host is up and reachable over its connection (ssh, network, credentials)",
    )


def verify(check: ReachableCheck, target: Target) -> None:
    target.check_reachable()
