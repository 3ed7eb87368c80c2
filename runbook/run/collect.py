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
from collections.abc import Callable

import pytest

from runbook.describe import kinds
from runbook.describe.loader import LoadedSystem
from runbook.errors import CheckError
from runbook.host.target import Target, TargetPool, display_spec
from runbook.run import gate
from runbook.run.case import Case, case_of, cases_of
from runbook.secrets import SECRETS

GROUP_MARKER = "runbook_group"


class Collector:
    """Registered by the plugin with the loaded systems."""

    def __init__(self, systems: list[LoadedSystem], permissions: gate.Permissions = gate.READ_ONLY) -> None:
        self.systems = systems
        self.permissions = permissions
        self.pool = TargetPool()
        # Whether a case already has its outcome from the checks run ahead (runbook.run.prefetch
        # sets this when it is on): such a case reports that outcome, even when the host went
        # down meanwhile, because its own failure may be what found the host down.
        self.ran_ahead: Callable[[Case], bool] = lambda case: False
        if permissions.writes:  # --allow-writes reaches the checks that decide step by step (scenario)
            for system in systems:
                for check in system.model.checks.all():
                    check.allow_writes()

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

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """A secret the selected checks need and the environment lacks stops the run (exit 4).

        A missing `${VAR}` is a configuration error of the run, not an outage of the service:
        said once, before any check runs, naming every variable and the checks that need it.
        Checks the selection leaves out (-m, -k, --system) need nothing.
        """
        if session.config.option.collectonly:
            return
        needed: dict[str, list[str]] = {}
        for item in session.items:
            case = case_of(item)
            for name in case.missing_env() if case is not None else ():
                needed.setdefault(name, []).append(case.id)  # type: ignore[union-attr]
        if needed:
            lines = [f"  {name} (needed by {', '.join(ids)})" for name, ids in sorted(needed.items())]
            raise pytest.UsageError(
                "secrets come from the environment, and these variables are not set:\n" + "\n".join(lines)
            )

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
        target = None if self.ran_ahead(case) else self.target_for(case)
        refused = gate.blocked(case, self.permissions, target)
        if refused is not None:
            if refused.fails:
                pytest.fail(refused.reason, pytrace=False)
            pytest.skip(refused.reason)

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


def _turn(item: pytest.Item) -> int:
    """Reachability first; a load test last (see CheckBase.runs_last); the rest as collected."""
    case = case_of(item)
    if case is None:
        return 1
    if case.check.reachability:
        return 0
    return 2 if case.check.runs_last else 1
