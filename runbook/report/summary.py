"""summary.json: one record per check, plus a run header, for history, alerts and exports.

The recorder keeps the newest `CheckRecord` (runbook.record) each test's
reports carry: the verdict folds setup, call and teardown into it, so the last
report of a test has its final outcome. A collection error gets a record of its
own. Records are masked by the verdict; the run header is masked here.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runbook import keys
from runbook.readers.safe_files import write_file
from runbook.record import (
    OUTCOMES,
    SEVERITIES,
    CheckRecord,
    crash_text,
    custom_record,
    link_causes,
    mask_all,
    record_of,
    summary_text,
)

FORMAT = "runbook-summary/1"
UNRATED = "unrated"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(record: CheckRecord, rootdir: Path) -> dict[str, Any]:
    """One check in summary.json (format runbook-summary/1)."""
    message = record.message or ("ok" if record.outcome == "passed" else record.outcome)
    return {
        "id": record.id if record.is_check else record.nodeid,
        "system": record.system,
        "check_id": record.check_id,
        "kind": record.kind,
        "outcome": record.outcome,
        "severity": record.severity,
        "title": record.title,
        "section": record.section,
        "source": record.source,
        "runbook_file": _relative(record.runbook_path, rootdir),
        "host": record.host,
        "markers": list(record.markers),
        "message": message,
        "expected": record.expected,
        "found": record.found,
        "remedy": record.remedy,
        "duration": round(record.duration, 3),
        "nodeid": record.nodeid,
        "waiver": record.waiver,
        "ready_after": record.ready_after,
        "attempts": record.attempts,
        "cause": record.cause,
    }


@functools.cache  # one runbook for many checks: Path arithmetic per check was a fifth of the writing
def _relative(path: str | None, rootdir: Path) -> str | None:
    if not path:
        return None
    try:
        return Path(path).relative_to(rootdir).as_posix()
    except ValueError:
        return path


class RunRecorder:
    """Registered by the report plugin; the HTML summary and JUnit properties read it too."""

    def __init__(self, config: pytest.Config, system_names: list[str]) -> None:
        self.config = config
        self.system_names = system_names
        self.marker_expression: str | None = config.getoption("markexpr", None) or None
        self.keyword_expression: str | None = config.getoption("keyword", None) or None
        self.started = utc_now()
        self.records: dict[str, CheckRecord] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = utc_now()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = record_of(report)
        if record is not None:
            self.records[report.nodeid] = record

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            record = custom_record(report.nodeid)
            record.kind = "collect"
            record.outcome = "error"
            record.message = f"collection failed: {crash_text(report)}"
            record.found = record.message
            self.records[report.nodeid] = record.masked()

    # -- views --------------------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        link_causes(list(self.records.values()))
        return [entry(record, self.config.rootpath) for record in self.records.values()]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for record in self.records.values():
            counts[record.outcome] = counts.get(record.outcome, 0) + 1
        return counts

    def failures_by_severity(self) -> dict[str, int]:
        """Failed and errored checks per severity; 'unrated' (custom tests) only when there are any."""
        counts = dict.fromkeys(SEVERITIES, 0)
        for record in self.records.values():
            if record.failed:
                severity = record.severity or UNRATED
                counts[severity] = counts.get(severity, 0) + 1
        return counts

    def by_system(self) -> dict[str, dict[str, Any]]:
        """Per system: its checks' outcomes counted and its worst failed severity (the HTML top)."""
        systems: dict[str, dict[str, Any]] = {}
        order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
        for record in self.records.values():
            if not record.is_check:
                continue
            row = systems.setdefault(record.system, {**dict.fromkeys(OUTCOMES, 0), "worst": None})
            row[record.outcome] = row.get(record.outcome, 0) + 1
            if record.failed and record.severity:
                worst = row["worst"]
                if worst is None or order[record.severity] < order.get(worst, len(order)):
                    row["worst"] = record.severity
        return systems

    def failures(self) -> list[dict[str, Any]]:
        """Failed and errored records, most severe first (the top of the HTML report), each
        failure's symptoms (`cause` is it) right after it."""
        order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
        failed = [entry for entry in self.entries() if entry["outcome"] in {"failed", "error"}]
        failed.sort(key=lambda entry: order.get(entry["severity"] or "", len(order)))
        symptoms: dict[str, list[dict[str, Any]]] = {}
        for entry in failed:
            if entry["cause"]:
                symptoms.setdefault(entry["cause"], []).append(entry)
        ordered = []
        for entry in failed:
            if not entry["cause"]:
                ordered += [entry, *symptoms.pop(entry["id"], [])]
        return ordered + [entry for rest in symptoms.values() for entry in rest]

    def document(self, exitstatus: int | None) -> dict[str, Any]:
        finished = utc_now()
        header = {
            "started": iso(self.started),
            "finished": iso(finished),
            "duration": round((finished - self.started).total_seconds(), 3),
            "marker_expression": self.marker_expression,
            "keyword_expression": self.keyword_expression,
            "systems": self.system_names,
            # "K/N" with --shard: runbook.merge names a shard whose report never arrived by it.
            "shard": (self.config.getoption("runbook_shard", None) or "").strip() or None,
            "exit_status": None if exitstatus is None else int(exitstatus),
            # Ctrl-C or SIGTERM (CI cancelling the job): the checks listed are what had run.
            "interrupted": exitstatus == pytest.ExitCode.INTERRUPTED,
            "counts": self.counts(),
            "failures_by_severity": self.failures_by_severity(),
        }
        changes = self.config.stash.get(keys.CHANGES, None)
        waivers = self.config.stash.get(keys.WAIVERS, None)
        return {
            "format": FORMAT,
            "run": mask_all(header),
            "checks": self.entries(),
            "history": None if changes is None else mask_all(changes.to_json()),
            "waivers": None if waivers is None else mask_all(waivers.to_json()),
        }

    def write(self, path: Path, exitstatus: int | None) -> None:
        """Written to a temporary name and renamed: a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, summary_text(self.document(exitstatus)))
