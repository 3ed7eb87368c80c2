"""Shared fixtures of the project's own tests (run with `pytest -p no:runbook selftests`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from runbook.host.target import Target
from runbook.secrets import SECRETS
from selftests.data_servers import Postgres, Redis, start_postgres, start_redis
from selftests.readers_kit import serve_health
from selftests.sshd import LoopbackSshd, sshd_for_session


@pytest.fixture(autouse=True)
def clean_secrets() -> Iterator[None]:
    """SECRETS is process-wide: each test starts and ends with an empty registry."""
    SECRETS.clear()
    yield
    SECRETS.clear()


@pytest.fixture
def local() -> Target:
    """A fresh local:// Target per test: its caches (backup listings) never leak between tests."""
    return Target("local", "local://", command_timeout=10, connect_timeout=5)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster with the Map v12 database, for the data kinds' tests."""
    yield from start_postgres()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    """A real sshd on loopback letting root in with a key of its own (transports, tunnels)."""
    yield from sshd_for_session(tmp_path_factory)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    """A redis-server with a password on loopback, for the data kinds' tests."""
    yield from start_redis()


@pytest.fixture(scope="session")
def health() -> Iterator[ThreadingHTTPServer]:
    """A /health endpoint on loopback answering 200: readers-app's health check (selftests.readers_kit)."""
    server = serve_health()
    yield server
    server.shutdown()
    server.server_close()


# ---- which tests drive the lab, and which of its systems -----------------------------------
# `make test` runs these tests under pytest-xdist with `--dist loadgroup`, scheduled by
# work_unit below: all of a lab system's tests (LAB_SYSTEMS) are one unit, so one worker runs
# them, in file order, and never beside another test that breaks or heals the same system;
# systems run side by side (each has its own hosts and dockerd). They get the mark `lab`.
# Every other module is a unit of its own: its module-scoped fixtures are made once, and tests
# that build on the ones before them in the module (a history, a reports folder) keep their
# order. `make unit` is `-m "not lab"`.
LAB_SYSTEMS = {
    "test_lab_calendar.py": "ai-calendar-assistant",
    "test_lab_readers.py": "ai-calendar-assistant",
    "test_lab_midrun.py": "ai-calendar-assistant",
    "test_lab_map_v12.py": "map-v12",
    "test_lab_loyalty.py": "loyalty-api",
    "test_lab_magic_master.py": "magic-master",
    "test_lab_vpn.py": "hexenvpn-xray",
    # the kit's own selftest system (slot 15): its systemd hosts, and the fleet of sshd hosts
    "test_lab_systemd_host.py": "lab-selftest-systemd",
    "test_lab_kinds_systemd.py": "lab-selftest-systemd",
    "test_fleet.py": "lab-selftest-fleet",
    # reads every system's fault table, injects nothing: in with the kit's own system
    "test_fault_tables.py": "lab-selftest-fleet",
}
# A module that imports the lab kit or a lab helper drives the lab; it must be in LAB_SYSTEMS.
LAB_IMPORT = re.compile(
    r"^\s*(?:from|import)\s+(?:selftests\.)?(?:lab|lab_harness|magic_master_host)\b", re.MULTILINE
)


def lab_system_of(path: Path) -> str | None:
    """The lab system a test module drives (None: no lab); UsageError for one not in the table."""
    system = LAB_SYSTEMS.get(path.name)
    if system is None and (path.name.startswith("test_lab_") or LAB_IMPORT.search(path.read_text())):
        raise pytest.UsageError(
            f"{path.name} drives the lab: name its system in LAB_SYSTEMS (selftests/conftest.py), so "
            "its tests run on that system's worker and stay out of `make unit`"
        )
    return system


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the lab's tests, and put them first (a system's files in table order): the lab
    groups are the longest units, and the scheduler hands units out in collection order."""
    systems = {path: lab_system_of(path) for path in {item.path for item in items}}
    order = {system: index for index, system in enumerate(dict.fromkeys(LAB_SYSTEMS.values()))}
    files = {name: index for index, name in enumerate(LAB_SYSTEMS)}
    for item in items:
        if systems[item.path] is not None:
            item.add_marker(pytest.mark.lab)
    items.sort(
        key=lambda item: (
            order.get(systems[item.path] or "", len(order)),
            files.get(item.path.name, len(files)),
        )
    )  # stable: a file's tests keep their order


def work_unit(nodeid: str) -> str:
    """The scheduler's unit of a test: its lab system, or else its module."""
    module = nodeid.split("::", 1)[0]
    return LAB_SYSTEMS.get(module.rsplit("/", 1)[-1], module)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`--dist loadgroup` by work_unit. xdist's own loadgroup reads xdist_group marks through
    Item._nodeid, which pytest 9 no longer uses for the node id: with pytest 9.2 and
    xdist 3.8 its groups are silently ignored and a system's tests ran on every worker at once."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LabSystemScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # collection order: the lab's groups first
    return LabSystemScheduling(config, log)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: drives the lab (set by selftests/conftest.py from LAB_SYSTEMS)")
    config.addinivalue_line(
        "markers",
        "slow: takes a second or more (a whole run in a subprocess, a real sshd or PostgreSQL, a "
        "deadline waited out): make test runs it, make unit (`-m 'not lab and not slow'`) does not",
    )


# ---- make unit stays fast: a slow test that is not marked is named at the end -----------------
UNMARKED_SLOW = 2.0  # seconds; tests marked `slow` have taken 0.8 s or more on this 2-core machine
_UNMARKED: dict[str, float] = {}  # node id -> seconds of its setup, call and teardown


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "slow" in report.keywords or "lab" in report.keywords:
        return
    _UNMARKED[report.nodeid] = _UNMARKED.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the tests that took UNMARKED_SLOW seconds without the `slow` mark (no failure: a busy
    runner makes any test slow; the list says where `make unit`'s minute goes)."""
    slow = sorted(
        ((seconds, nodeid) for nodeid, seconds in _UNMARKED.items() if seconds >= UNMARKED_SLOW), reverse=True
    )
    if slow:
        terminalreporter.section("slow tests without @pytest.mark.slow (make unit runs them)")
        for seconds, nodeid in slow:
            terminalreporter.write_line(f"{seconds:6.2f}s {nodeid}")
