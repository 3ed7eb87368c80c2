"""A case: one check of one system on one host, what each runbook test is parametrized with.

`cases_of` lists a system's cases in the order its checklist reads: each host's reachability
first, then the described checks kind by kind, one case per host of a group (`host: replicas`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runbook.describe import kinds
from runbook.describe.loader import LoadedSystem
from runbook.describe.model import CheckBase


@dataclass(frozen=True)
class Case:
    """One check of one system: what a test is parametrized with."""

    system: LoadedSystem
    check: CheckBase
    place: str  # field path in the description, e.g. checks.backups[2]
    on_host: str | None = None  # the host of a check that names a group: one Case per host

    @property
    def check_id(self) -> str:
        """The check's id in reports: `check-id`, or `check-id@host` for each host of a group."""
        return f"{self.check.id}@{self.on_host}" if self.on_host else self.check.id

    @property
    def id(self) -> str:
        return f"{self.system.name}:{self.check_id}"

    @property
    def host_name(self) -> str:
        return self.on_host or self.system.model.host_of(self.check)

    def missing_env(self) -> list[str]:
        return sorted(
            name
            for name, places in self.system.missing_env.items()
            if any(place == self.place or place.startswith(self.place + ".") for place in places)
        )


def cases_of(system: LoadedSystem) -> list[Case]:
    """Every check of a system: reachability of each host first, then the described ones."""
    cases = [
        Case(system, kinds.reachability_for(name, spec), f"hosts.{name}")
        for name, spec in system.model.hosts.items()
    ]
    for kind in kinds.describable():
        for index, check in enumerate(system.model.checks.of_kind(kind)):
            place = f"checks.{kind}[{index}]"
            group = system.model.hosts_of(check)
            if group is None:
                cases.append(Case(system, check, place))
            else:
                cases += [Case(system, check, place, on_host=host) for host in group]
    return cases


def case_of(item: pytest.Item) -> Case | None:
    """The Case behind a collected test (None for other tests), also for the reporting modules."""
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("check") if callspec else None
    return param if isinstance(param, Case) else None
