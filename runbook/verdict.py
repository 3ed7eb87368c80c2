"""What a failed check says: severity, expected, found, remedy, runbook section.

A `CheckFailed` (or a `CheckError`: the check could not look) becomes a short
report without a traceback; every report, of any test, has known secrets
masked before any reporter (terminal, JUnit, HTML, summary) sees it. The facts
of a runbook check travel on `report.runbook`, a plain dict.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbook.collect import case_of
from runbook.outcome import CheckError, CheckFailed
from runbook.report.junit import failure_message
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


def runbook_ref(case: Any) -> str:
    return f"{Path(case.system.model.runbook).name} § {case.check.section}"


def describe(case: Any) -> dict[str, Any]:
    check = case.check
    return {
        "system": case.system.name,
        "check_id": check.id,
        "id": case.id,
        "kind": check.kind,
        "aspect": check.aspect,
        "title": check.title,
        "severity": check.severity,
        "section": check.section,
        "runbook": runbook_ref(case),
        "runbook_path": str(case.system.model.runbook),
        "remedy": check.remedy,
        "host": case.host_name,
        "markers": list(check.effective_markers),
        "expected": None,
        "found": None,
        "message": None,
        "evidence": {},
    }


def _failure_text(info: dict[str, Any]) -> str:
    lines = [f"[{info['severity']}] {info['title']} ({info['id']})"]
    if info["expected"]:
        lines.append(f"expected: {info['expected']}")
    lines.append(f"found:    {info['found']}")
    lines.append(f"remedy:   {info['remedy']}")
    lines.append(f"runbook:  {info['runbook']}")
    for name, text in info["evidence"].items():
        if text:
            lines.append(f"--- {name} ---")
            lines.extend(text.splitlines()[-40:])
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    case = case_of(item)
    if case is not None:
        info = getattr(item, "_runbook_info", None) or describe(case)
        item._runbook_info = info  # type: ignore[attr-defined]
        error = call.excinfo.value if call.excinfo is not None else None
        if report.when == "call" or (report.failed and info["message"] is None):
            _record(report, info, error)
        report.runbook = info  # type: ignore[attr-defined]
    _mask(report)
    return report


def _record(report: pytest.TestReport, info: dict[str, Any], error: BaseException | None) -> None:
    path = report.location[0]
    # failure_message: "[P2] §<section>: <found>", what JUnit's message attribute shows in CI.
    if isinstance(error, CheckFailed | CheckError):
        if isinstance(error, CheckFailed):
            info.update(expected=error.expected, found=error.found, evidence=error.evidence)
        else:
            info.update(found=f"could not check: {error}")
        info["message"] = failure_message(info)
        report.longrepr = CheckRepr(_failure_text(info), info["message"], path)
    elif report.skipped and isinstance(report.longrepr, tuple):
        info["message"] = f"skipped: {report.longrepr[2].removeprefix('Skipped: ')}"
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        info["found"] = crash.message if crash else str(report.longrepr).splitlines()[-1]
        info["message"] = failure_message(info)
        if crash is not None:
            crash.message = info["message"]
        else:  # pytest.fail(pytrace=False) and friends: a bare string, no message to carry severity
            original = str(report.longrepr).strip()
            text = _failure_text(info) + (f"\n{original}" if "\n" in original else "")
            report.longrepr = CheckRepr(text, info["message"], path)
    elif report.passed and report.when == "call":
        info["message"] = "ok"


def _mask(report: pytest.TestReport) -> None:
    """Secrets out of everything a reporter can print."""
    if isinstance(report.longrepr, CheckRepr):
        report.longrepr.text = SECRETS.mask(report.longrepr.text)
        report.longrepr.reprcrash.message = SECRETS.mask(report.longrepr.reprcrash.message)
    elif isinstance(report.longrepr, tuple):
        path, lineno, message = report.longrepr
        report.longrepr = (path, lineno, SECRETS.mask(message))
    elif report.longrepr is not None:
        text = str(report.longrepr)
        masked = SECRETS.mask(text)
        if masked != text:
            # Keep a crash message: the terminal's summary line and JUnit's message read it.
            crash = getattr(report.longrepr, "reprcrash", None)
            message = SECRETS.mask(crash.message) if crash else masked.strip().splitlines()[-1]
            report.longrepr = CheckRepr(masked, message, report.location[0])
    report.sections = [(title, SECRETS.mask(content)) for title, content in report.sections]
    info = getattr(report, "runbook", None)
    if info:
        for key in ("expected", "found", "message"):
            if isinstance(info.get(key), str):
                info[key] = SECRETS.mask(info[key])
        info["evidence"] = {name: SECRETS.mask(text) for name, text in info["evidence"].items()}
