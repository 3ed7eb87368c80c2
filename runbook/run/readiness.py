"""`--wait-ready=120s`: a smoke gate right after a deploy waits for services still warming up.

Why: `pytest -m smoke` often starts while the new containers are still starting, and a
gate that fails on a service that is green ten seconds later blocks a good release. With
`--wait-ready=DURATION`, the smoke checks are run in rounds before the checklist: each round
runs every check still failing, at once (one attempt per check in flight), every
`RETRY_SECONDS`, until all are green or DURATION after the run started has passed. A check
that never turns green cannot starve the others: each is retried in every round. Then the
checklist runs as usual, and each smoke check's record says after how many attempts and how
many seconds from the run's start (the deploy's start, not its turn) it turned green; one that
never did fails with its finding and says how long it was waited for. Without the option
nothing is retried.

Not waited for: an unreachable host (its verdict is reported once per run), checks that
may not run (runbook.run.gate) and checks that run in their own turn (timed, writing,
downloading: see gate.in_turn_only). Under xdist each worker waits for its own tests.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from runbook import keys
from runbook.describe.model import format_duration, parse_duration
from runbook.errors import CheckError, CheckFailed, CheckPassed, HostUnreachable
from runbook.run.case import Case, case_of
from runbook.run.gate import Permissions, blocked, in_turn_only
from runbook.run.verify import verify

RETRY_SECONDS = 2.0
MARKER = "smoke"
# Checks tried at once in a round: each is one command or request to its host.
AT_ONCE = 16


def parse_wait(text: str | None) -> float | None:
    """Seconds from '120s', '2m', '90' (a usage error otherwise); None without the option."""
    if not text:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--wait-ready: {exc}") from None


@dataclass
class Waited:
    """How one smoke check went while the gate waited."""

    attempts: int = 0
    green_after: float | None = None  # seconds from the run's start


@dataclass
class Readiness:
    """Registered where tests run (also on xdist workers); what it waited for goes on the record."""

    wait: float
    started: float = field(default_factory=time.monotonic)
    waited: dict[str, Waited] = field(default_factory=dict)  # by test node id

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.monotonic()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        """The rounds, before any test runs (and before checks are run ahead)."""
        collector = session.config.stash.get(keys.COLLECTOR, None)
        if collector is not None and not session.config.option.collectonly:
            pending = [
                (item.nodeid, case)
                for item in session.items
                if item.get_closest_marker(MARKER) is not None
                and (case := case_of(item)) is not None
                and not in_turn_only(case.check)
            ]
            self._rounds(collector, Permissions.of(session.config), pending)
        return (yield)

    def _rounds(self, collector: Any, permissions: Permissions, pending: list[tuple[str, Case]]) -> None:
        deadline = self.started + self.wait
        with ThreadPoolExecutor(AT_ONCE, thread_name_prefix="runbook-ready") as pool:
            while pending:
                began = time.monotonic()
                outcomes = list(
                    pool.map(lambda entry: self._attempt(collector, permissions, *entry), pending)
                )
                pending = [entry for entry, retry in zip(pending, outcomes, strict=True) if retry]
                if not pending or time.monotonic() + RETRY_SECONDS > deadline:
                    return
                time.sleep(max(0.0, RETRY_SECONDS - (time.monotonic() - began)))

    def _attempt(self, collector: Any, permissions: Permissions, nodeid: str, case: Case) -> bool:
        """One try of one check; True while it is worth another round."""
        target = collector.target_for(case)
        if blocked(case, permissions, target) is not None:
            return False
        waited = self.waited.setdefault(nodeid, Waited())
        waited.attempts += 1
        target.forget_facts()  # docker inspect and friends are cached per run: look again
        try:
            verify(case.check, target)
        except CheckPassed:
            pass
        except HostUnreachable:
            return False
        except (AssertionError, CheckError):
            return True
        waited.green_after = round(time.monotonic() - self.started, 1)
        return False

    # Innermost wrapper: what the test found is said with what the gate waited for.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        waited = self.waited.get(item.nodeid)
        try:
            result = yield
        except (AssertionError, CheckError) as failure:
            if waited is None or isinstance(failure, HostUnreachable):
                raise
            self._note(item, waited)
            note = f"still failing after waiting {format_duration(self.wait)}, {waited.attempts} attempts"
            if waited.green_after is not None:
                note = f"green after {waited.green_after:g} s while waiting, failing again now"
            raise _after_waiting(failure, note) from None
        if waited is not None:
            self._note(item, waited)
        return result

    def _note(self, item: pytest.Item, waited: Waited) -> None:
        record = item.stash.get(keys.RECORD, None)
        if record is not None:
            record.attempts = waited.attempts
            record.ready_after = waited.green_after


def _after_waiting(failure: BaseException, note: str) -> BaseException:
    """The last failure, saying how long it was waited for."""
    if isinstance(failure, CheckFailed):
        return CheckFailed(failure.expected, f"{failure.found} ({note})", failure.evidence)
    if isinstance(failure, CheckError):
        return type(failure)(f"{failure} ({note})")
    return failure


def configure(config: pytest.Config) -> None:
    wait = parse_wait(config.getoption("runbook_wait_ready", None))
    if wait is not None:
        config.pluginmanager.register(Readiness(wait), "runbook-readiness")
