"""A run against the runs before it: new, still failing, flapping and resolved checks.

Why: the on-call does not read forty rows; they read what changed since yesterday. Each red
check of this run is exactly one of: **new** (green or unseen before) or **still failing**
(red in the runs before it: since when, for how many runs, counted over every run that
included the check, whatever its markers). Either may also be **flapping** (it changed state
at least `changes` times over the scope's last `runs` runs): a fresh failure of a flapping
check is both new now and flapping, and is listed under both. A check red before and green
now is **resolved**. Waived failures are red in the history (the system really is broken) but
are no one's to-do: they are listed with the waivers, not here.

States: red = failed, error or waived; green = passed; skipped = unknown (a run that could
not look neither breaks nor continues a streak). The comparison is with the runs of the
same scope (systems + marker expression), read by `runbook.readers.history` in the transaction
that records this run; a red streak's start is read from every run (runbook.readers.history).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runbook.readers.history import Past, Result, RunInfo, Streak

RED, GREEN = "red", "green"
STATUSES = ("new", "still_failing", "flapping", "resolved")  # the lists; flapping overlaps the first two


@dataclass(frozen=True)
class FlapPolicy:
    """Flapping: at least `changes` changes of state over the last `runs` runs (this one included)."""

    changes: int = 3
    runs: int = 10


@dataclass(frozen=True)
class CheckChange:
    check: str  # system:check-id
    system: str
    check_id: str
    title: str
    severity: str | None
    found: str | None
    status: str  # new, still_failing or resolved
    since: str  # ISO time the red streak began (resolved: began before it ended)
    runs: int  # red runs in a row, this one included (resolved: how many it was red)
    changes: int  # state changes over the policy's window
    since_report_dir: str | None = None
    flapping: bool = False  # changed state at least the policy's `changes` times in its window

    def lasted(self, now: datetime) -> float:
        """Seconds from the streak's start to `now`."""
        return max(0.0, (now - parse_time(self.since)).total_seconds())


@dataclass
class RunChanges:
    """What changed in this run, for the HTML top, incident.md, notifications and summary.json."""

    scope: str
    previous: RunInfo | None
    policy: FlapPolicy
    new: list[CheckChange] = field(default_factory=list)
    still_failing: list[CheckChange] = field(default_factory=list)  # oldest first
    resolved: list[CheckChange] = field(default_factory=list)

    @property
    def failing(self) -> list[CheckChange]:
        """Every red check once: new ones, then those still failing."""
        return [*self.new, *self.still_failing]

    @property
    def flapping(self) -> list[CheckChange]:
        """The red checks that flap, whether new now or still failing: a view across both."""
        return [change for change in self.failing if change.flapping]

    @property
    def changed(self) -> bool:
        """Whether a notification has anything to say: a check turned red or green."""
        return bool(self.new or self.resolved)

    def of(self, check: str) -> CheckChange | None:
        return next((change for change in (*self.failing, *self.resolved) if change.check == check), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "previous_run": None if self.previous is None else self.previous.started,
            "flapping_rule": dataclasses.asdict(self.policy),
            **{
                status: [dataclasses.asdict(change) for change in getattr(self, status)]
                for status in STATUSES
            },
        }


def scope_of(systems: list[str], marker_expression: str | None) -> str:
    """'ai-calendar-assistant -m daily': the runs a run is compared with."""
    markers = " ".join((marker_expression or "").split()) or "(all)"
    return f"{','.join(sorted(systems))} -m {markers}"


def state(outcome: str) -> str | None:
    if outcome in {"failed", "error", "waived"}:
        return RED
    return GREEN if outcome == "passed" else None


def compare(
    scope: str, started: str, current: list[Result], past: Past, policy: FlapPolicy | None = None
) -> RunChanges:
    """Classify this run's checks against the runs before it (`past`, newest first)."""
    policy = policy or FlapPolicy()
    changes = RunChanges(scope, past.runs[0][0] if past.runs else None, policy)
    window = list(reversed(past.runs[: max(0, policy.runs - 1)]))  # oldest first, this run comes last
    for result in current:
        now = state(result.outcome)
        if now is None:
            continue
        earlier = [(info, s) for info, results in window if (s := _state_in(results, result.check))]
        flips = _flips([s for _, s in earlier] + [now])
        before = earlier[-1][1] if earlier else None
        if now == RED and result.outcome != "waived":
            change = _failing(result, started, past.streaks.get(result.check), flips, policy)
            getattr(changes, change.status).append(change)
        elif now == GREEN and before == RED:
            changes.resolved.append(_resolved(result, earlier, flips))
    changes.still_failing.sort(key=lambda change: (change.since, change.check))
    return changes


def _state_in(results: dict[str, Result], check: str) -> str | None:
    result = results.get(check)
    return state(result.outcome) if result is not None else None


def _flips(states: list[str]) -> int:
    return sum(1 for earlier, later in itertools.pairwise(states) if earlier != later)


def _failing(
    result: Result, started: str, streak: Streak | None, flips: int, policy: FlapPolicy
) -> CheckChange:
    flapping = flips >= policy.changes
    if streak is None:
        change = _change(result, "new", since=started, runs=1, changes=flips, since_report_dir=None)
    else:
        change = _change(
            result, "still_failing", since=streak.since, runs=streak.runs + 1, changes=flips,
            since_report_dir=streak.since_report_dir,
        )  # fmt: skip
    return dataclasses.replace(change, flapping=flapping)


def _resolved(result: Result, earlier: list[tuple[RunInfo, str]], flips: int) -> CheckChange:
    red_runs = 0
    for _, earlier_state in reversed(earlier):
        if earlier_state != RED:
            break
        red_runs += 1
    first_red = earlier[len(earlier) - red_runs][0]
    return _change(
        result, "resolved", since=first_red.started, runs=red_runs, changes=flips,
        since_report_dir=first_red.report_dir,
    )  # fmt: skip


def _change(
    result: Result, status: str, *, since: str, runs: int, changes: int, since_report_dir: str | None
) -> CheckChange:
    return CheckChange(
        check=result.check,
        system=result.system,
        check_id=result.check_id,
        title=result.title,
        severity=result.severity,
        found=None if status == "resolved" else result.found,
        status=status,
        since=since,
        runs=runs,
        changes=changes,
        since_report_dir=since_report_dir,
    )


# -- times ---------------------------------------------------------------------------------


def iso_time(moment: datetime) -> str:
    """'2026-11-23T08:15:00.123456Z': sortable as text, as the history stores it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def short_time(text: str) -> str:
    """'2026-11-23 08:15 UTC'."""
    return parse_time(text).strftime("%Y-%m-%d %H:%M UTC")


def span(seconds: float) -> str:
    """'45 s', '17 min', '3 h 20 min', '2 d 4 h': how long something lasted."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
