"""The run in its history: recorded, and compared with the previous runs of its scope.

Done when the tests are over and before any report is written (a wrapper of
pytest_sessionfinish runs before junitxml and report.html are written), so that the
HTML report can open with what changed, and summary.json, incident.md and the notifications
can say it too. The comparison goes into `config.stash[keys.CHANGES]`. A history store
that cannot be written is reported on the terminal; it never changes the run's exit status.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from runbook import keys
from runbook.readers.changes import FlapPolicy, RunChanges, compare, iso_time, scope_of, short_time
from runbook.readers.history import HistoryError, HistoryStore, Result, RunInfo
from runbook.record import CheckRecord
from runbook.report.summary import RunRecorder, utc_now
from runbook.secrets import SECRETS


def result_of(record: CheckRecord) -> Result:
    return Result(
        check=record.id,
        system=record.system,
        check_id=record.check_id,
        outcome=record.outcome,
        severity=record.severity,
        title=record.title,
        found=record.found if record.outcome != "passed" else None,
    )


class HistoryComparison:
    def __init__(
        self,
        config: pytest.Config,
        recorder: RunRecorder,
        location: str,
        policy: FlapPolicy,
        folder: Path | None,
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.location = location
        self.policy = policy
        self.folder = folder
        self.problem: str | None = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, Any, Any]:
        if session.exitstatus == pytest.ExitCode.USAGE_ERROR:  # nothing ran: not a run of the system
            return (yield)
        try:
            self.config.stash[keys.CHANGES] = self.record(int(session.exitstatus))
        except HistoryError as exc:
            self.problem = str(exc)
        return (yield)

    def record(self, exitstatus: int) -> RunChanges:
        recorder = self.recorder
        results = [result_of(record) for record in recorder.records.values() if record.kind != "collect"]
        scope = scope_of(recorder.system_names, recorder.marker_expression)
        run = RunInfo(
            scope=scope,
            started=iso_time(recorder.started),
            finished=iso_time(utc_now()),
            marker_expression=recorder.marker_expression,
            systems=tuple(recorder.system_names),
            exit_status=exitstatus,
            report_dir=self.folder.name if self.folder is not None else None,
        )
        with HistoryStore.open(self.location) as store:
            past = store.record_run(run, results, window=self.policy.runs)
        return compare(scope, run.started, results, past, self.policy)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.problem:
            terminalreporter.write_line(f"runbook history: {self.problem}", yellow=True)
            return
        changes = self.config.stash.get(keys.CHANGES, None)
        if changes is None:
            return
        previous = "no earlier run" if changes.previous is None else short_time(changes.previous.started)
        counts = ", ".join(
            f"{len(items)} {name}"
            for name, items in (
                ("new", changes.new),
                ("still failing", changes.still_failing),
                ("flapping", changes.flapping),
                ("resolved", changes.resolved),
            )
        )
        terminalreporter.write_line(SECRETS.mask(f"runbook history: {counts} (previous run: {previous})"))
