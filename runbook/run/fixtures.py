"""Fixtures of the runbook tests and of custom checks.

`check` and `target` serve the parametrized runbook tests; `runbook_targets` and
`runbook_systems` let a plain pytest test (a custom check) reach the same hosts
through the same seam, with the same deadlines and unreachable verdicts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runbook import keys
from runbook.describe.loader import LoadedSystem
from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run.case import Case
from runbook.run.collect import Collector


def _collector(config: pytest.Config) -> Collector:
    return config.stash[keys.COLLECTOR]


@pytest.fixture
def check(request: pytest.FixtureRequest) -> CheckBase:
    """The check (pydantic model) this test runs."""
    return request.param.check  # type: ignore[no-any-return]


@pytest.fixture
def runbook_case(request: pytest.FixtureRequest) -> Case:
    """The check with its system (for tests that need the description)."""
    return request.node.callspec.params["check"]  # type: ignore[no-any-return]


@pytest.fixture
def target(request: pytest.FixtureRequest, runbook_case: Case) -> Target:
    """The host the check runs against (the host seam: commands with deadlines)."""
    return _collector(request.config).target_for(runbook_case)


@pytest.fixture(scope="session")
def runbook_targets(request: pytest.FixtureRequest) -> Callable[..., Target]:
    """Factory for custom checks: runbook_targets(system_name, host_name=None) -> Target."""
    collector = _collector(request.config)

    def get(system_name: str, host_name: str | None = None) -> Target:
        system = next((s for s in collector.systems if s.name == system_name), None)
        if system is None:
            known = ", ".join(s.name for s in collector.systems)
            raise pytest.UsageError(f"runbook_targets: no system {system_name!r} (loaded: {known})")
        name = host_name or next(iter(system.model.hosts))
        return collector.target(system, name)

    return get


@pytest.fixture(scope="session")
def runbook_systems(request: pytest.FixtureRequest) -> list[LoadedSystem]:
    """Every loaded system description."""
    return _collector(request.config).systems
