"""`--wait-ready=120s`: a smoke gate right after a deploy waits for services still warming up.

Why: `pytest -m smoke` often starts while the new containers are still starting, and a
gate that fails on a service that is green ten seconds later blocks a good release. With
`--wait-ready=DURATION`, a failing check marked smoke is run again (every
`RETRY_SECONDS`) until it passes or the deadline passes; the deadline is DURATION after
the run started, for the whole run. A check that turned green says when (seconds since the
run started) and after how many attempts; one that never did fails with its last finding
and says how long it was waited for. Without the option nothing is retried.

An unreachable host is not waited for: its verdict is reported once per run (runbook.host.target).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

from runbook import keys
from runbook.describe.model import format_duration, parse_duration
from runbook.errors import CheckError, CheckFailed, HostUnreachable
from runbook.host.target import Target

RETRY_SECONDS = 2.0
MARKER = "smoke"


def parse_wait(text: str | None) -> float | None:
    """Seconds from '120s', '2m', '90' (a usage error otherwise); None without the option."""
    if not text:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--wait-ready: {exc}") from None


@dataclass
class Readiness:
    """Registered where tests run (also on xdist workers); what it waited for goes on the record."""

    wait: float
    started: float = field(default_factory=time.monotonic)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.monotonic()

    # Innermost wrapper: the retries run inside pytest's capture and logging of the call.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        try:
            return (yield)
        except (AssertionError, CheckError) as first:
            if isinstance(first, HostUnreachable) or item.get_closest_marker(MARKER) is None:
                raise
            self._retry(item, first)
            return None

    def _retry(self, item: pytest.Item, failure: BaseException) -> None:
        deadline = self.started + self.wait
        attempts = 1
        while time.monotonic() + RETRY_SECONDS <= deadline:
            time.sleep(RETRY_SECONDS)
            attempts += 1
            target = getattr(item, "funcargs", {}).get("target")
            if isinstance(target, Target):
                target.forget_facts()  # docker inspect and friends are cached per run: look again
            try:
                item.runtest()
            except (AssertionError, CheckError) as exc:
                failure = exc
                continue
            self._note(item, attempts, green=True)
            return
        self._note(item, attempts, green=False)
        note = f"still failing after waiting {format_duration(self.wait)}, {attempts} attempts"
        raise _after_waiting(failure, note)

    def _note(self, item: pytest.Item, attempts: int, *, green: bool) -> None:
        record = item.stash.get(keys.RECORD, None)
        if record is not None:
            record.attempts = attempts
            record.ready_after = round(time.monotonic() - self.started, 1) if green else None


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
