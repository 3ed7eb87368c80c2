"""A check that failed on time while the runner itself was starved says "runner overloaded"."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from runbook.errors import CheckFailed, CheckPassed, CommandTimeout, HostUnreachable, RunnerOverloaded
from runbook.run import runner_load, verify
from runbook.run.runner_load import LagMonitor


@pytest.mark.slow
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


def _verify_looks(monkeypatch: pytest.MonkeyPatch, *looks: Exception | None) -> list[int]:
    """verify() over a kind that raises each of `looks` in turn (None: passes); returns the looks made."""
    made: list[int] = []

    def kind(check: Any, target: Any) -> None:
        made.append(1)
        failure = looks[len(made) - 1]
        if failure is not None:
            raise failure

    monkeypatch.setattr(verify.kinds, "verifier", lambda check: kind)
    monkeypatch.setattr(verify, "SECOND_LOOK_PAUSE", 0.01)
    monkeypatch.setattr(runner_load.MONITOR, "worst", lambda since: 0.0)
    verify.verify(None, None)  # type: ignore[arg-type]
    return made


def test_one_slow_answer_gets_a_second_look_and_green_says_what_it_saw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = CheckFailed("balance within 800ms", "took 874ms > 800ms", slow=True)
    with pytest.raises(CheckPassed) as passed:
        _verify_looks(monkeypatch, slow, None)
    assert passed.value.note == "green on a second look 0.01 s later; the first measured: took 874ms > 800ms"


def test_slow_twice_is_red_with_both_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    first = CheckFailed("balance within 800ms", "took 874ms > 800ms", slow=True)
    second = CheckFailed("balance within 800ms", "took 912ms > 800ms", slow=True)
    with pytest.raises(CheckFailed) as failed:
        _verify_looks(monkeypatch, first, second)
    assert failed.value.found == "took 912ms > 800ms (a look 0.01 s earlier: took 874ms > 800ms)"
    assert "expected: balance within 800ms" in str(failed.value)


def test_a_failure_that_is_not_slow_gets_one_look(monkeypatch: pytest.MonkeyPatch) -> None:
    down = CheckFailed("status 200", "status 502 != 200")
    made: list[int] = []

    def kind(check: Any, target: Any) -> None:
        made.append(1)
        raise down

    monkeypatch.setattr(verify.kinds, "verifier", lambda check: kind)
    with pytest.raises(CheckFailed) as failed:
        verify.verify(None, None)  # type: ignore[arg-type]
    assert failed.value is down
    assert made == [1]


def test_a_host_found_down_by_a_starved_runner_blames_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped 15 s mid-run, the runner missed its own shell deadlines: five lab hosts 'unreachable'."""
    down = HostUnreachable("host server (ssh+persist://root@192.0.2.1) unreachable: no answer from the shell")
    with pytest.raises(RunnerOverloaded, match=r"It measured: host server .* unreachable: no answer"):
        _verify_raising(monkeypatch, down, late=15.0)
    with pytest.raises(HostUnreachable):
        _verify_raising(monkeypatch, down, late=0.1)
