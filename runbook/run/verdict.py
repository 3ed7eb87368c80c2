"""What a test became: the run record, and a failure that reads as a checklist line.

A `CheckFailed` (or a `CheckError`: the check could not look) becomes a short
report without a traceback: severity, title, expected, found, remedy, runbook
section. Every test gets a `CheckRecord` (runbook.record) in its stash, updated
at each phase and attached, masked, to each report, so that every writer reads
the same facts, also from xdist workers. Every report, of any test, has known
secrets masked before any reporter (terminal, JUnit, HTML, summary) sees it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbook import keys
from runbook.errors import CheckError, CheckFailed, CheckPassed
from runbook.record import CheckRecord, attach, crash_text, custom_record, record_of
from runbook.run.case import Case, case_of
from runbook.secrets import SECRETS


@dataclass
class Crash:
    """What the terminal summary line and JUnit's failure message show."""

    path: str
    lineno: int
    message: str


class CheckRepr:
    """A longrepr of plain lines, in place of a traceback that helps nobody at 9 am."""

    def __init__(self, text: str, message: str, path: str) -> None:
        self.text = text
        self.reprcrash = Crash(path, 0, message)

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def runbook_ref(case: Case) -> str:
    return f"{Path(case.system.model.runbook).name} § {case.check.section}"


def new_record(item: pytest.Item) -> CheckRecord:
    case = case_of(item)
    if case is None:
        return custom_record(item.nodeid)
    check = case.check
    return CheckRecord(
        system=case.system.name,
        check_id=case.check_id,
        kind=check.kind,
        title=check.title,
        nodeid=item.nodeid,
        aspect=check.aspect,
        host=case.host_name,
        severity=check.severity,
        section=check.section,
        runbook=runbook_ref(case),
        runbook_path=str(case.system.model.runbook),
        source="; ".join(str(source) for source in check.source or []) or None,
        after=list(check.after),
        provides=list(check.provides),
        needs=list(check.needs),
        remedy=check.remedy,
        markers=list(check.effective_markers),
    )


# The outcomes a check raises: they carry their own words, so pytest need not draw a traceback.
VERDICTS = (CheckFailed, CheckError, CheckPassed)


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_of_a_verdict(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> pytest.TestReport | None:
    """A check's verdict becomes a report without pytest's traceback, which the wrapper below
    replaces anyway: drawing it read the source of every frame and resolved the path of every
    loaded module (inspect.getmodule), 1.2 s of CPU for the first failing check of a run.
    Anything else (a custom test, the suite's own bug) gets pytest's report, traceback and all."""
    error = call.excinfo.value if call.excinfo is not None else None
    if not isinstance(error, VERDICTS):
        return None
    sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
    return pytest.TestReport(
        item.nodeid,
        item.location,
        dict.fromkeys(item.keywords, 1),
        "failed",
        str(error),
        call.when,
        sections,
        call.duration,
        call.start,
        call.stop,
        user_properties=item.user_properties,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    record = item.stash.setdefault(keys.RECORD, new_record(item))
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, CheckPassed) and report.when == "call":
        report.outcome, report.longrepr = "passed", None
    _update(record, report, error)
    masked = record.masked()
    if isinstance(error, CheckFailed | CheckError) and report.failed:
        report.longrepr = CheckRepr(masked.failure_text(), masked.ci_message(), report.location[0])
    _mask_longrepr(report, masked)
    attach(report, masked)
    return report


def _update(record: CheckRecord, report: pytest.TestReport, error: BaseException | None) -> None:
    """Fold one phase (setup, call, teardown) into the record."""
    record.phases.append(report.when)
    record.duration += report.duration
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            record.outcome = "skipped" if report.skipped else report.outcome
            record.message = f"xfail: {report.wasxfail}".strip()
            return
        record.outcome = report.outcome
        if isinstance(error, CheckFailed):
            record.expected, record.found, record.evidence = error.expected, error.found, dict(error.evidence)
        elif isinstance(error, CheckError):
            record.found = f"could not check: {error}"
        elif report.failed:
            record.found = crash_text(report)
        if report.passed:
            record.message = error.note if isinstance(error, CheckPassed) else "ok"
        elif report.skipped:
            record.message = f"skipped: {crash_text(report)}"
        else:
            record.message = _failure_message(record)
    elif report.failed and record.outcome != "failed":
        # A failing setup or teardown is an error (pytest's words), unless the call failed already.
        record.outcome = "error"
        record.found = f"{report.when} failed: {crash_text(report)}"
        record.message = _failure_message(record)
    elif report.skipped and report.when == "setup":
        record.outcome = "skipped"
        record.message = f"skipped: {crash_text(report)}"


def _failure_message(record: CheckRecord) -> str:
    if record.is_check:
        return record.ci_message()
    return (record.found or "failed").strip().split("\n", 1)[0]


def _mask_longrepr(report: pytest.TestReport, record: CheckRecord) -> None:
    """Secrets out of everything a reporter can print; checks' failures carry their CI message."""
    longrepr = report.longrepr
    if isinstance(longrepr, CheckRepr):
        longrepr.text = SECRETS.mask(longrepr.text)
        longrepr.reprcrash.message = SECRETS.mask(longrepr.reprcrash.message)
    elif isinstance(longrepr, tuple):
        path, lineno, message = longrepr
        report.longrepr = (path, lineno, SECRETS.mask(message))
    elif longrepr is not None and report.failed:
        text = SECRETS.mask(str(longrepr))
        crash = getattr(longrepr, "reprcrash", None)
        if record.is_check:
            # A plain failure of a check (pytest.fail, an assert): keep its text, carry severity.
            body = record.failure_text() + (f"\n{text.strip()}" if "\n" in text.strip() else "")
            report.longrepr = CheckRepr(body, record.ci_message(), report.location[0])
        elif text != str(longrepr) or crash is None:
            message = SECRETS.mask(crash.message) if crash else text.strip().splitlines()[-1]
            report.longrepr = CheckRepr(text, message, report.location[0])
    report.sections = [(title, SECRETS.mask(content)) for title, content in report.sections]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """A collection error (an import failing in a custom check) can quote a secret too."""
    report: pytest.CollectReport = yield
    if report.failed and report.longrepr is not None:
        text = str(report.longrepr)
        masked = SECRETS.mask(text)
        if masked != text:
            report.longrepr = masked
    return report


# -- the record travels with the report to an xdist controller --------------------------


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(config: pytest.Config, report: Any) -> Generator[None, Any, Any]:
    data = yield
    record = record_of(report)
    if isinstance(data, dict) and record is not None:
        data["runbook_record"] = record.to_json()
        if isinstance(report.longrepr, CheckRepr):
            data["runbook_crash"] = report.longrepr.reprcrash.message
    return data


@pytest.hookimpl(wrapper=True)
def pytest_report_from_serializable(config: pytest.Config, data: dict[str, Any]) -> Generator[None, Any, Any]:
    report = yield
    if report is not None and isinstance(data.get("runbook_record"), dict):
        attach(report, CheckRecord.from_json(data["runbook_record"]))
        message = data.get("runbook_crash")
        if message and isinstance(report.longrepr, str):
            report.longrepr = CheckRepr(report.longrepr, message, report.location[0])
    return report
