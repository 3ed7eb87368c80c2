"""Checks run ahead, host by host at once, while pytest still reports them one by one.

Why: a check costs at least one round trip to its host, so a fleet checked one test at a
time costs hosts x checks round trips (30 hosts x 7 checks x 30 ms is 6 s of waiting).
When the run starts, one task per host (up to `--parallel-hosts` at once) runs that host's
reachability check, then its other checks (a few at once where the transport opens a
shell per caller); each test then waits for its own check and raises what the check
raised, where `run_check` would have. Test ids, order, outcomes, messages, records and
reports are the ones a sequential run gives; only the waiting overlaps.

Left to their own test (runbook.run.gate): checks that write or download, checks that
measure time (load, rate limits, `max_seconds`: they would measure our own concurrency;
they start only once every check run ahead has finished, see `settle`), checks skipped
or failed before they run (feature, writes, missing environment), and
every check of a host found unreachable (its tests skip with a pointer, as before).
Under xdist, a worker runs ahead the hosts of the tests it is given (see runbook.run.host_scheduling).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pytest

from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run.case import Case, case_of
from runbook.run.collect import Collector
from runbook.run.gate import READ_ONLY, blocked, in_turn_only
from runbook.run.shard import host_key
from runbook.run.verify import verify

DEFAULT_HOSTS_AT_ONCE = 16
# Checks of one host at once: each takes a shell of its own on the host's one connection.
CHECKS_PER_HOST = 4
# Transports where concurrent commands are safe and each gets its own session.
CONCURRENT_SCHEMES = frozenset({"ssh+persist", "ssh", "safe-ssh", "local"})


def runs_ahead(case: Case) -> bool:
    """Whether the check's outcome cannot depend on when or beside what it runs, and it may run."""
    return not in_turn_only(case.check) and blocked(case, READ_ONLY) is None


# What a future holds for a check that was not run ahead after all (its host went down).
NOT_RUN = RuntimeError("not run ahead")


@dataclass
class HostPlan:
    """The checks of one host connection, reachability first, each with its future."""

    target: Target
    cases: list[tuple[Case, Future[BaseException | None]]] = field(default_factory=list)


class Ahead:
    """The run's checks started ahead; `claim` hands a test its check's outcome."""

    def __init__(self, collector: Collector, *, hosts_at_once: int) -> None:
        self.collector = collector
        self.pool = ThreadPoolExecutor(max(1, hosts_at_once), thread_name_prefix="runbook-host")
        # By (check, host): a check naming a group of hosts is one object run on each of them.
        self.futures: dict[tuple[int, str], Future[BaseException | None]] = {}
        self.every_future: list[Future[BaseException | None]] = []
        self.started: set[str] = set()
        self.lock = threading.Lock()

    def start(self, cases: Iterable[Case]) -> None:
        """Run ahead these cases, one task per host connection not started yet."""
        plans: dict[str, HostPlan] = {}
        with self.lock:
            for case in cases:
                if not runs_ahead(case):
                    continue
                target = self.collector.target_for(case)
                spec = target.connection.spec
                if spec in self.started:
                    continue
                future: Future[BaseException | None] = Future()
                self.futures[(id(case.check), case.host_name)] = future
                self.every_future.append(future)
                plans.setdefault(spec, HostPlan(target)).cases.append((case, future))
            self.started.update(plans)
        for plan in plans.values():
            self.pool.submit(self._run_host, plan)

    def settle(self) -> None:
        """Wait until every check started ahead has finished, claimed by its test or not."""
        with self.lock:
            started = list(self.every_future)
        wait(started)

    def ran(self, case: Case) -> bool:
        """Whether the case ran ahead (waits for it to finish; its test is about to claim it)."""
        with self.lock:
            future = self.futures.get((id(case.check), case.host_name))
        return future is not None and future.result() is not NOT_RUN

    def claim(self, check: CheckBase, host_name: str) -> Future[BaseException | None] | None:
        with self.lock:
            return self.futures.pop((id(check), host_name), None)

    def _run_host(self, plan: HostPlan) -> None:
        reachable = [pair for pair in plan.cases if pair[0].check.reachability]
        others = [pair for pair in plan.cases if not pair[0].check.reachability]
        for case, future in reachable:
            self._run_one(case, future)
        width = CHECKS_PER_HOST if plan.target.scheme in CONCURRENT_SCHEMES else 1
        if width == 1 or len(others) < 2:
            for case, future in others:
                self._run_one(case, future)
            return
        with ThreadPoolExecutor(width, thread_name_prefix="runbook-check") as checks:
            for case, future in others:
                checks.submit(self._run_one, case, future)

    def _run_one(self, case: Case, future: Future[BaseException | None]) -> None:
        try:
            target = self.collector.target_for(case)
            if blocked(case, READ_ONLY, target) is not None:  # its host went down: its test skips
                future.set_result(NOT_RUN)
                return
            verify(case.check, target)
        except BaseException as exc:  # handed to the test, raised there
            future.set_result(exc)
            return
        future.set_result(None)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


_ACTIVE: Ahead | None = None


def activate(ahead: Ahead | None) -> None:
    global _ACTIVE
    if _ACTIVE is not None:
        _ACTIVE.close()
    _ACTIVE = ahead


def settle() -> None:
    """Let the checks run ahead finish before a check that measures time runs in its turn:
    a load test beside them would slow them (CI saw /metrics time out) and time them too."""
    if _ACTIVE is not None:
        _ACTIVE.settle()


def outcome_of(check: CheckBase, host_name: str) -> tuple[bool, BaseException | None]:
    """(whether the check ran ahead on that host, what it raised). Waits for it if still running."""
    ahead = _ACTIVE
    future = ahead.claim(check, host_name) if ahead is not None else None
    if future is None:
        return False, None
    raised = future.result()
    if raised is NOT_RUN:
        return False, None
    return True, raised


class AheadPlugin:
    """Starts the run's checks ahead: all hosts at the start, or per host on an xdist worker."""

    def __init__(self, collector: Collector, config: pytest.Config, hosts_at_once: int) -> None:
        self.config = config
        self.ahead = Ahead(collector, hosts_at_once=hosts_at_once)
        # An xdist worker learns its tests one host at a time (--dist-hosts).
        self.on_worker = hasattr(config, "workerinput")
        self.by_host: dict[str, list[Case]] = {}
        collector.ran_ahead = self.ahead.ran
        activate(self.ahead)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        option = session.config.option
        # pytest's own loop runs nothing then: `--co` (and a run stopped by collection errors) must
        # not reach a host. It did: `pytest --co` ran every selected check ahead and threw it away.
        if option.collectonly or (session.testsfailed and not option.continue_on_collection_errors):
            return
        cases = [case for item in session.items if (case := case_of(item)) is not None]
        if self.on_worker:
            for case in cases:
                self.by_host.setdefault(host_key(case), []).append(case)
        else:
            self.ahead.start(cases)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        case = case_of(item) if self.on_worker else None
        if case is not None:
            self.ahead.start(self.by_host.pop(host_key(case), []))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        activate(None)
