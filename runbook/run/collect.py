"""From descriptions to tests: one test per check, id `system:check-id`.

A check naming a group of hosts (`host: replicas`) is one test per host of the group, id
`system:check-id@host`, so a report says which replica failed.

A group's test function (tests_health/, tests_backup/, tests_config/) asks for
the checks of every kind in its group with `@pytest.mark.runbook_group("health")`
and the fixtures `check` and `target`. Each check becomes a parameter carrying
its markers (daily, smoke, incident) and its kind as a `-k` keyword. Every host
also gets a `reachable-<host>` check under all markers, run first: when a host
is down that is the one failure, and the checks that would have waited on it are
skipped with a pointer to it. A described check that no collected test runs
stops the run at collection: a checklist item must never silently vanish.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from runbook.checks.reachable import KIND as REACHABLE_KIND
from runbook.checks.reachable import for_host
from runbook.describe import kinds
from runbook.describe.loader import LoadedSystem
from runbook.describe.model import CheckBase
from runbook.errors import CheckError
from runbook.host.target import Target, TargetPool, display_spec
from runbook.secrets import SECRETS

GROUP_MARKER = "runbook_group"


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
    cases = [Case(system, for_host(name), f"hosts.{name}") for name in system.model.hosts]
    for kind in kinds.describable():
        for index, check in enumerate(system.model.checks.of_kind(kind)):
            place = f"checks.{kind}[{index}]"
            group = system.model.hosts_of(check)
            if group is None:
                cases.append(Case(system, check, place))
            else:
                cases += [Case(system, check, place, on_host=host) for host in group]
    return cases


class Collector:
    """Registered by the plugin with the loaded systems."""

    def __init__(self, systems: list[LoadedSystem]) -> None:
        self.systems = systems
        self.pool = TargetPool()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        marker = metafunc.definition.get_closest_marker(GROUP_MARKER)
        if marker is None or "check" not in metafunc.fixturenames:
            return
        groups = set(marker.args)
        unknown = groups - {model.group for model in kinds.load().values()}
        if unknown:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown runbook_group {sorted(unknown)}")
        params = [
            pytest.param(
                case, id=case.id, marks=[getattr(pytest.mark, m) for m in case.check.effective_markers]
            )
            for system in self.systems
            for case in cases_of(system)
            if case.check.group in groups
        ]
        metafunc.parametrize("check", params, indirect=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Before -m / -k deselect: every described check has a test; reachability first."""
        empty = [item for item in items if _is_runbook(item) and case_of(item) is None]
        if empty:
            config.hook.pytest_deselected(items=empty)
            items[:] = [item for item in items if item not in empty]
        for item in items:
            case = case_of(item)
            if case is not None:
                item.extra_keyword_matches.add(case.check.kind)
        self._refuse_unrun_checks(config, items)
        items.sort(key=_turn)

    def _refuse_unrun_checks(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """'kind X has N checks but no test runs them', when the run covers the whole suite."""
        collected = {case.id for item in items if (case := case_of(item)) is not None}
        unrun = Counter(
            case.check.kind
            for system in self.systems
            for case in cases_of(system)
            if case.id not in collected
        )
        if not unrun:
            return
        text = "; ".join(
            f"kind {kind} has {count} check(s) but no test runs them "
            f"(no collected test is marked runbook_group({kinds.load()[kind].group!r}))"
            for kind, count in sorted(unrun.items())
        )
        if _whole_suite(config):
            raise pytest.UsageError(text)
        config.issue_config_time_warning(pytest.PytestWarning(f"runbook: {text}"), stacklevel=2)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """Reasons a check cannot run, reported before its code runs."""
        case = case_of(item)
        if case is None:
            return
        feature = case.check.requires_feature
        if feature and not case.system.model.features.get(feature, False):
            pytest.skip(f"{case.system.name} does not declare feature {feature!r} (features.{feature})")
        writes = case.check.writes
        if writes and not (item.config.getoption("runbook_allow_writes") or case.system.model.allow_writes):
            pytest.skip(
                f"writes to the system ({writes}): runs only with --allow-writes "
                f"or allow_writes: true in the description of {case.system.name}"
            )
        allowed = item.config.getoption("runbook_allow_writes") or case.system.model.allow_writes
        if case.check.is_download and not (allowed or item.config.getoption("runbook_allow_downloads")):
            pytest.skip(
                "downloads a whole file from the service (its load and disk): runs only with "
                "--allow-downloads or --allow-writes"
            )
        missing = case.missing_env()
        if missing:
            pytest.fail(
                f"environment variable {', '.join(missing)} not set (needed by {case.place}); "
                "secrets come from the environment",
                pytrace=False,
            )
        target = self.target_for(case)
        if target.unreachable is not None and case.check.kind != REACHABLE_KIND:
            pytest.skip(
                f"host {case.host_name} unreachable: see {case.system.name}:reachable-{case.host_name}"
            )

    def target_for(self, case: Case) -> Target:
        return self.target(case.system, case.host_name)

    def target(self, system: LoadedSystem, host_name: str) -> Target:
        model = system.model
        if host_name not in model.hosts:
            raise CheckError(f"{system.name} has no host {host_name!r} (hosts: {', '.join(model.hosts)})")
        return self.pool.get(
            host_name,
            model.hosts[host_name],
            command_timeout=model.command_timeout,
            connect_timeout=model.connect_timeout,
            peers=lambda other: self.target(system, other),
        )

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        for system in self.systems:
            hosts = ", ".join(
                f"{name}={SECRETS.mask(display_spec(spec))}" for name, spec in system.model.hosts.items()
            )
            lines.append(f"runbook: {system.name} ({len(system.model.checks.all())} checks) on {hosts}")
        return lines

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Every connection the run opened is closed at its end."""
        self.pool.close()


def _whole_suite(config: pytest.Config) -> bool:
    """True when pytest was started without test paths (the ini's testpaths are collected)."""
    return config.args_source != pytest.Config.ArgsSource.ARGS


def _is_runbook(item: pytest.Item) -> bool:
    return item.get_closest_marker(GROUP_MARKER) is not None


def case_of(item: pytest.Item) -> Case | None:
    """The Case behind a collected test (None for other tests), also for the reporting modules."""
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("check") if callspec else None
    return param if isinstance(param, Case) else None


def _turn(item: pytest.Item) -> int:
    """Reachability first; a load test last (see CheckBase.runs_last); the rest as collected."""
    case = case_of(item)
    if case is None:
        return 1
    if case.check.kind == REACHABLE_KIND:
        return 0
    return 2 if case.check.runs_last else 1
