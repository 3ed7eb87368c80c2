"""Whether a case may run, and why not: one answer for its test and for the prefetch.

A check is not run when its system lacks the feature it needs, when it writes (or downloads a
whole file) and the run does not allow that, when a secret it needs is not in the environment,
or when its host is unreachable (its test then points at `reachable-<host>`). All but the
missing secret skip the test; a missing secret fails it, since a checklist item that could
not be ticked is not green.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run.case import Case


@dataclass(frozen=True)
class Permissions:
    """What the run allows beyond reading: --allow-writes (implies downloads), --allow-downloads."""

    writes: bool = False
    downloads: bool = False

    @classmethod
    def of(cls, config: pytest.Config) -> Permissions:
        return cls(
            writes=bool(config.getoption("runbook_allow_writes", False)),
            downloads=bool(config.getoption("runbook_allow_downloads", False)),
        )


# Nothing beyond reading: what the prefetch asks with, so that no writing check runs ahead.
READ_ONLY = Permissions()


@dataclass(frozen=True)
class Blocked:
    """Why a case does not run; `fails` for a reason that must not pass as a skip."""

    reason: str
    fails: bool = False


def blocked(case: Case, permissions: Permissions, target: Target | None = None) -> Blocked | None:
    """The reason `case` may not run now, or None. `target`: its host's connection, if known."""
    check, system = case.check, case.system
    for feature in check.requires_feature or ():
        if not system.model.features.get(feature, False):
            return Blocked(f"{system.name} does not declare feature {feature!r} (features.{feature})")
    writes_allowed = permissions.writes or system.model.allow_writes
    if check.writes and not writes_allowed:
        return Blocked(
            f"writes to the system ({check.writes}): runs only with --allow-writes "
            f"or allow_writes: true in the description of {system.name}"
        )
    if check.is_download and not (writes_allowed or permissions.downloads):
        return Blocked(
            "downloads a whole file from the service (its load and disk): runs only with "
            "--allow-downloads or --allow-writes"
        )
    missing = case.missing_env()
    if missing:
        return Blocked(
            f"environment variable {', '.join(missing)} not set (needed by {case.place}); "
            "secrets come from the environment",
            fails=True,
        )
    if target is not None and target.unreachable is not None and not check.reachability:
        pointer = f"{system.name}:reachable-{case.host_name.lower()}"
        return Blocked(f"host {case.host_name} unreachable: see {pointer}")
    return None


def in_turn_only(check: CheckBase) -> bool:
    """A check whose outcome depends on when or beside what it runs: never run ahead.

    Writes never run beside reads of the system, a download never before it was allowed, and
    a check that times answers would time our own concurrency (see CheckBase.timed).
    """
    return check.measures_time or bool(check.writes) or check.is_download
