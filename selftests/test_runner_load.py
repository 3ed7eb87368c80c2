"""A check that failed on time while the runner itself was starved says "runner overloaded"."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from runbook.errors import CheckFailed, CommandTimeout, RunnerOverloaded
from runbook.run import runner_load, verify
from runbook.run.runner_load import LagMonitor


def test_the_monitor_sees_the_runner_late_when_it_cannot_run() -> None:
    """Holding the interpreter 1.5 s (as a CPU-starved runner would be held) shows as lateness."""
    monitor = LagMonitor()
    monitor.start()
    time.sleep(0.3)
    quiet_since = time.monotonic()
    time.sleep(0.3)
    assert monitor.worst(quiet_since) < 0.5
    busy_since = time.monotonic()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5.0)  # the monitor's thread gets no turn while this loop runs
    try:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(interval)
    time.sleep(0.3)
    assert monitor.worst(busy_since) >= 1.0


def _verify_raising(monkeypatch: pytest.MonkeyPatch, failure: Exception, late: float) -> None:
    def kind(check: Any, target: Any) -> None:
        raise failure

    monkeypatch.setattr(verify.kinds, "verifier", lambda check: kind)
    monkeypatch.setattr(runner_load.MONITOR, "worst", lambda since: late)
    verify.verify(None, None)  # type: ignore[arg-type]


def test_a_timing_failure_on_a_late_runner_blames_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    timed_out = CheckFailed("GET /health answers within 5s", "no answer within 5s (GET /health)", timing=True)
    with pytest.raises(RunnerOverloaded) as overloaded:
        _verify_raising(monkeypatch, timed_out, late=2.5)
    text = str(overloaded.value)
    assert text.startswith(
        "runner overloaded: while this check ran, its own 0.1 s timer woke up to 2.5 s late"
    )
    assert text.endswith("It measured: no answer within 5s (GET /health)")
    with pytest.raises(RunnerOverloaded):
        _verify_raising(monkeypatch, CommandTimeout("`sleep 9` did not finish within 5s"), late=2.5)


@pytest.mark.parametrize(
    ("failure", "late"),
    [
        (CheckFailed("status 200", "status 502 != 200", timing=False), 2.5),  # not about time
        (CheckFailed("within 5s", "no answer within 5s", timing=True), 0.2),  # the runner was on time
    ],
)
def test_other_failures_stand(monkeypatch: pytest.MonkeyPatch, failure: CheckFailed, late: float) -> None:
    with pytest.raises(CheckFailed) as failed:
        _verify_raising(monkeypatch, failure, late)
    assert failed.value is failure
