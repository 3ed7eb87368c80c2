"""summary.json: one record per check, plus a run header, for history, alerts and exports.

The recorder follows every test's setup / call / teardown reports and keeps one
record per test: runbook checks carry their facts on `report.runbook` (see
`runbook.verdict`); any other test (a custom check, a collection error) gets a
record whose system and check id come from its node id, with kind "custom".
Every string is masked before it is written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runbook.secrets import SECRETS

FORMAT = "runbook-summary/1"
OUTCOMES: tuple[str, ...] = ("passed", "failed", "skipped", "error")
SEVERITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
UNRATED = "unrated"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def mask_all(value: Any) -> Any:
    """Mask every string of a JSON-able structure (before encoding: escapes would hide a secret)."""
    if isinstance(value, str):
        return SECRETS.mask(value)
    if isinstance(value, dict):
        return {mask_all(key): mask_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_all(item) for item in value]
    return value


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """('tests_x/test_y.py', 'test_z[param]') for a test that is not a runbook check."""
    path, _, name = nodeid.partition("::")
    return path or "custom", name or path


def _crash_text(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    lines = str(longrepr or "").strip().splitlines()
    return lines[-1] if lines else ""


@dataclass
class Record:
    """What one test became, accumulated over its setup, call and teardown."""

    nodeid: str
    info: dict[str, Any] | None = None
    outcome: str = "passed"
    duration: float = 0.0
    message: str = ""
    phases: list[str] = field(default_factory=list)

    def add(self, report: pytest.TestReport) -> None:
        self.phases.append(report.when)
        self.duration += report.duration
        info = getattr(report, "runbook", None)
        if info is not None:
            self.info = info
        if report.when == "call":
            if hasattr(report, "wasxfail"):
                self.outcome = "skipped" if report.skipped else report.outcome
                self.message = f"xfail: {report.wasxfail}".strip()
            else:
                self.outcome = report.outcome
                if not report.passed:
                    self.message = _crash_text(report)
        elif report.failed:
            # A failing setup or teardown is an error (pytest's words), unless the call failed already.
            if self.outcome != "failed":
                self.outcome = "error"
                self.message = f"{report.when} failed: {_crash_text(report)}"
        elif report.skipped and report.when == "setup":
            self.outcome = "skipped"
            self.message = _crash_text(report)

    def to_json(self, rootdir: Path) -> dict[str, Any]:
        info = self.info
        if info is None:
            system, check_id = split_nodeid(self.nodeid)
            kind = "collect" if not self.phases else "custom"
            first_line = self.message.strip().split("\n", 1)[0]
            message = first_line or ("ok" if self.outcome == "passed" else self.outcome)
            if self.outcome == "skipped":
                message = f"skipped: {message}"
            return {
                "id": self.nodeid,
                "system": system,
                "check_id": check_id,
                "kind": kind,
                "outcome": self.outcome,
                "severity": None,
                "title": check_id,
                "section": None,
                "runbook_file": None,
                "host": None,
                "markers": [],
                "message": message,
                "expected": None,
                "found": self.message if self.outcome in {"failed", "error"} else None,
                "remedy": None,
                "duration": round(self.duration, 3),
                "nodeid": self.nodeid,
            }
        message = info.get("message") or self.message or self.outcome
        if self.outcome == "error" and message == "ok":
            message = self.message  # passed, then its teardown failed
        return {
            "id": info["id"],
            "system": info["system"],
            "check_id": info["check_id"],
            "kind": info["kind"],
            "outcome": self.outcome,
            "severity": info["severity"],
            "title": info["title"],
            "section": info["section"],
            "runbook_file": _relative(info.get("runbook_path"), rootdir),
            "host": info["host"],
            "markers": list(info.get("markers") or []),
            "message": message,
            "expected": info.get("expected"),
            "found": info.get("found"),
            "remedy": info["remedy"],
            "duration": round(self.duration, 3),
            "nodeid": self.nodeid,
        }


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
        self.records: dict[str, Record] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = utc_now()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.records.setdefault(report.nodeid, Record(report.nodeid))
        record.add(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            record = self.records.setdefault(report.nodeid, Record(report.nodeid))
            record.outcome = "error"
            record.message = f"collection failed: {_crash_text(report)}"

    # -- views --------------------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        return [mask_all(record.to_json(self.config.rootpath)) for record in self.records.values()]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for record in self.records.values():
            counts[record.outcome] = counts.get(record.outcome, 0) + 1
        return counts

    def failures_by_severity(self) -> dict[str, int]:
        """Failed and errored checks per severity; 'unrated' (custom tests) only when there are any."""
        counts = dict.fromkeys(SEVERITIES, 0)
        for record in self.records.values():
            if record.outcome in {"failed", "error"}:
                severity = (record.info or {}).get("severity") or UNRATED
                counts[severity] = counts.get(severity, 0) + 1
        return counts

    def failures(self) -> list[dict[str, Any]]:
        """Failed and errored records, most severe first (the top of the HTML report)."""
        order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
        failed = [entry for entry in self.entries() if entry["outcome"] in {"failed", "error"}]
        return sorted(failed, key=lambda entry: order.get(entry["severity"] or "", len(order)))

    def document(self, exitstatus: int | None) -> dict[str, Any]:
        finished = utc_now()
        header = {
            "started": iso(self.started),
            "finished": iso(finished),
            "duration": round((finished - self.started).total_seconds(), 3),
            "marker_expression": self.marker_expression,
            "keyword_expression": self.keyword_expression,
            "systems": self.system_names,
            "exit_status": None if exitstatus is None else int(exitstatus),
            "counts": self.counts(),
            "failures_by_severity": self.failures_by_severity(),
        }
        return {"format": FORMAT, "run": mask_all(header), "checks": self.entries()}

    def write(self, path: Path, exitstatus: int | None) -> None:
        """Written to a temporary name and renamed: a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.document(exitstatus), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
