"""From descriptions to tests: one test per check, id `system:check-id`.

A test function asks for the checks of one kind with
`@pytest.mark.runbook_kind("containers")` and the fixtures `check` and
`target`. Each check becomes a parameter carrying its markers (daily, smoke,
incident). Every host also gets a `reachable-<host>` check under all markers,
run first: when a host is down that is the one failure, and the checks that
would have waited on it are skipped with a pointer to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from runbook.hosts import Target, TargetPool, display_spec
from runbook.loader import LoadedSystem
from runbook.schema import CHECK_KINDS, MARKERS, CheckBase
from runbook.secrets import SECRETS

REACHABLE_KIND = "hosts"


class ReachableCheck(CheckBase):
    """Synthetic: the host answers a trivial command (runbook step zero: `ssh root@...`)."""

    kind: ClassVar[str] = REACHABLE_KIND
    default_markers: ClassVar[tuple[str, ...]] = MARKERS


@dataclass(frozen=True)
class Case:
    """One check of one system: what a test is parametrized with."""

    system: LoadedSystem
    check: CheckBase
    place: str  # field path in the description, e.g. checks.backups[2]

    @property
    def id(self) -> str:
        return f"{self.system.name}:{self.check.id}"

    @property
    def host_name(self) -> str:
        return self.system.model.host_of(self.check)

    def missing_env(self) -> list[str]:
        return sorted(
            name
            for name, places in self.system.missing_env.items()
            if any(place == self.place or place.startswith(self.place + ".") for place in places)
        )


def cases_of(system: LoadedSystem, kind: str) -> list[Case]:
    if kind == REACHABLE_KIND:
        return [
            Case(
                system,
                ReachableCheck(
                    id=f"reachable-{name}",
                    title=f"Host {name} answers",
                    severity="P1",
                    section="connection (ssh to the server)",
                    remedy="Check that the host is up and reachable over its connection "
                    "(ssh, network, credentials); nothing else on it can be checked until then.",
                    host=name,
                ),
                f"hosts.{name}",
            )
            for name in system.model.hosts
        ]
    return [
        Case(system, check, f"checks.{kind}[{index}]")
        for index, check in enumerate(getattr(system.model.checks, kind))
    ]


class Collector:
    """Registered by the plugin with the loaded systems."""

    def __init__(self, systems: list[LoadedSystem]) -> None:
        self.systems = systems
        self.pool = TargetPool()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        marker = metafunc.definition.get_closest_marker("runbook_kind")
        if marker is None or "check" not in metafunc.fixturenames:
            return
        kind = marker.args[0]
        if kind not in CHECK_KINDS and kind != REACHABLE_KIND:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown runbook_kind {kind!r}")
        params = [
            pytest.param(
                case, id=case.id, marks=[getattr(pytest.mark, m) for m in case.check.effective_markers]
            )
            for system in self.systems
            for case in cases_of(system, kind)
        ]
        metafunc.parametrize("check", params, indirect=True)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Drop kinds no system uses (pytest's empty-parameter skips); reachability first."""
        empty = [item for item in items if _is_runbook(item) and case_of(item) is None]
        if empty:
            config.hook.pytest_deselected(items=empty)
            items[:] = [item for item in items if item not in empty]
        items.sort(key=lambda item: 0 if _kind(item) == REACHABLE_KIND else 1)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """Reasons a check cannot run, reported before its code runs."""
        case = case_of(item)
        if case is None:
            return
        feature = case.check.requires_feature
        if feature and not case.system.model.features.get(feature, False):
            pytest.skip(f"{case.system.name} does not declare feature {feature!r} (features.{feature})")
        missing = case.missing_env()
        if missing:
            pytest.fail(
                f"environment variable {', '.join(missing)} not set (needed by {case.place}); "
                "secrets come from the environment",
                pytrace=False,
            )
        target = self.target_for(case)
        if target.unreachable is not None and case.check.kind != REACHABLE_KIND:
            pytest.skip(f"host {target.name} unreachable: see {case.system.name}:reachable-{target.name}")

    def target_for(self, case: Case) -> Target:
        return self.target(case.system, case.host_name)

    def target(self, system: LoadedSystem, host_name: str) -> Target:
        model = system.model
        return self.pool.get(
            system.name,
            host_name,
            model.hosts[host_name],
            command_timeout=model.command_timeout,
            connect_timeout=model.connect_timeout,
        )

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        for system in self.systems:
            hosts = ", ".join(
                f"{name}={SECRETS.mask(display_spec(spec))}" for name, spec in system.model.hosts.items()
            )
            lines.append(f"runbook: {system.name} ({len(system.model.checks.all())} checks) on {hosts}")
        return lines


def _is_runbook(item: pytest.Item) -> bool:
    return item.get_closest_marker("runbook_kind") is not None


def case_of(item: pytest.Item) -> Case | None:
    """The Case behind a collected test (None for other tests), also for the reporting modules."""
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("check") if callspec else None
    return param if isinstance(param, Case) else None


def _kind(item: pytest.Item) -> str | None:
    case = case_of(item)
    return case.check.kind if case else None
