"""The whole run's budget: `--run-deadline`, and SIGTERM as a clean stop.

Why: cron and CI give a run a slot; a run that overstays it is killed, and a killed run leaves
no report. With `--run-deadline=10m` a check not started by then is reported as not run
(skipped, with the reason), so the run ends in time with every report written. A SIGTERM (CI
cancelling the job) is taken as an interruption: pytest stops after the current test, the
reports are written with what had run, and the summary says the run was interrupted (exit 2).
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

import pytest

from runbook.describe.model import format_duration, parse_duration


def parse_deadline(text: str | None) -> float | None:
    if not text:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--run-deadline: {exc}") from None
    if seconds <= 0:
        raise pytest.UsageError("--run-deadline: must be more than 0")
    return seconds


class RunBudget:
    """Registered where tests run; on the controller of an xdist run each worker keeps its own."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.previous: Any = None

    def install(self) -> None:
        """From configure on: a SIGTERM during collection is a clean stop too."""
        try:
            self.previous = signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.monotonic()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.seconds is not None and time.monotonic() - self.started > self.seconds:
            pytest.skip(
                f"not run: the run's deadline (--run-deadline={format_duration(self.seconds)}) "
                "passed before this check started"
            )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM becomes what Ctrl-C is to pytest: stop, write the reports, exit 2 (interrupted)."""
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def configure(config: pytest.Config) -> None:
    budget = RunBudget(parse_deadline(config.getoption("runbook_run_deadline", None)))
    budget.install()
    config.pluginmanager.register(budget, "runbook-budget")
