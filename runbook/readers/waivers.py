"""Waivers: failures the team has accepted for a while, written down with a reason and an end.

Why: a known failure that is being dealt with (a backup host moving this week) should not
turn every morning's checklist and every deploy gate red, nor should it be forgotten. A
waiver file (`--waivers=FILE`, ini `runbook_waivers`) lists them:

    waivers:
      - check: "ai-calendar-assistant:backup-*"   # glob on system:check-id, or on the check id alone
        justification: backups move to the new host this week (OPS-142)
        expires: 2026-12-01                       # the last day it applies (UTC)
        owner: alice

A waived failure becomes pytest's "expected failure" (xfail): the run's exit status ignores
it, JUnit writes it as skipped with the waiver as its message, and every report shows it as
waived. A waiver past its date no longer applies (the failure fails, and the reports say the
waiver expired); a waiver that matched no failing check this run is reported as stale. A
file that does not parse, or an entry without justification or expiry, stops the run as a
usage error (exit 4) naming the entry.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runbook import keys
from runbook.describe.yamlfile import YamlFileError, read_yaml
from runbook.record import CheckRecord, record_of
from runbook.run.verdict import CheckRepr
from runbook.secrets import SECRETS


class Waiver(BaseModel):
    """One accepted failure."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check: str = Field(min_length=1, max_length=200, description="glob on system:check-id or check-id")
    justification: str = Field(min_length=1, max_length=2000)
    expires: date
    owner: str | None = Field(default=None, max_length=200)

    @field_validator("check", "justification")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    def matches(self, record: CheckRecord) -> bool:
        if ":" in self.check:
            return fnmatch.fnmatchcase(record.id, self.check)
        return fnmatch.fnmatchcase(record.check_id, self.check)

    def active(self, today: date) -> bool:
        return today <= self.expires

    def describe(self) -> str:
        """'until 2026-12-01, alice: backups move this week'."""
        owner = f", {self.owner}" if self.owner else ""
        return f"until {self.expires.isoformat()}{owner}: {self.justification}"


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waivers: list[Waiver] = Field(default_factory=list)


def load_waivers(path: Path) -> list[Waiver]:
    """The file's waivers, or a UsageError naming the entry and field that is wrong."""
    try:
        data = read_yaml(path)
    except YamlFileError as exc:
        raise pytest.UsageError(f"waivers: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise pytest.UsageError(f"waivers: {path}: top level must be a mapping with a 'waivers:' list")
    try:
        return WaiverFile.model_validate(data).waivers
    except ValidationError as exc:
        raise pytest.UsageError(f"waivers: {path}:\n{_problems(exc, data)}") from None


def _problems(exc: ValidationError, data: dict[str, Any]) -> str:
    lines = []
    for error in exc.errors():
        location = list(error["loc"])
        where = ""
        if len(location) >= 2 and location[0] == "waivers" and isinstance(location[1], int):
            entry = data["waivers"][location[1]]
            check = entry.get("check") if isinstance(entry, dict) else None
            where = f"waivers[{location[1]}]" + (f" (check {check})" if check else "")
            location = location[2:]
        else:
            where = ".".join(str(part) for part in location[:1])
            location = location[1:]
        field_path = ".".join(str(part) for part in location)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}{'.' + field_path if field_path else ''}: {message}")
    return "\n".join(lines)


@dataclass
class WaiverUse:
    waiver: Waiver
    checks: list[str] = field(default_factory=list)  # failing checks it applied to (or would have)


@dataclass
class WaiverBook:
    """The run's waivers and what each did: applied, expired (and matched a failure), or stale."""

    path: Path
    today: date
    uses: list[WaiverUse]

    @classmethod
    def of(cls, path: Path, today: date) -> WaiverBook:
        return cls(path, today, [WaiverUse(waiver) for waiver in load_waivers(path)])

    def find(self, record: CheckRecord) -> tuple[Waiver | None, Waiver | None]:
        """(the first waiver in force for this failure, else the first expired one that matches)."""
        matching = [use for use in self.uses if use.waiver.matches(record)]
        for use in matching:
            _note(use, record.id)
        active = [use.waiver for use in matching if use.waiver.active(self.today)]
        expired = [use.waiver for use in matching if not use.waiver.active(self.today)]
        return (active[0] if active else None), (expired[0] if expired else None)

    def applied(self) -> list[WaiverUse]:
        return [use for use in self.uses if use.checks and use.waiver.active(self.today)]

    def expired(self) -> list[WaiverUse]:
        return [use for use in self.uses if not use.waiver.active(self.today)]

    def stale(self) -> list[WaiverUse]:
        return [use for use in self.uses if not use.checks and use.waiver.active(self.today)]

    def to_json(self) -> dict[str, Any]:
        def entry(use: WaiverUse) -> dict[str, Any]:
            return {**use.waiver.model_dump(mode="json"), "checks": list(use.checks)}

        return {
            "file": str(self.path),
            "applied": [entry(use) for use in self.applied()],
            "expired": [entry(use) for use in self.expired()],
            "stale": [entry(use) for use in self.stale()],
        }

    def lines(self) -> list[str]:
        """What the terminal and the HTML say about the waivers, one line each."""
        out = [
            f"waived: {', '.join(use.checks)} ({use.waiver.check}, {use.waiver.describe()})"
            for use in self.applied()
        ]
        for use in self.expired():
            hit = f": {', '.join(use.checks)} fail(s) again" if use.checks else ""
            out.append(f"expired on {use.waiver.expires.isoformat()}: {use.waiver.check}{hit}")
        out.extend(f"stale (matched no failing check): {use.waiver.check}" for use in self.stale())
        return [SECRETS.mask(line) for line in out]


def _note(use: WaiverUse, check: str) -> None:
    if check not in use.checks:
        use.checks.append(check)


class Waivers:
    """Registered on the process that writes the reports; turns waived failures into xfails."""

    def __init__(self, book: WaiverBook) -> None:
        self.book = book

    # A wrapper runs before every plain implementation: the terminal, junitxml, report.html,
    # the summary and the session's failure count all see the waived report.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        record = record_of(report)
        if record is not None and (record.failed or record.outcome == "waived"):
            self._apply(report, record)
        return (yield)

    def _apply(self, report: pytest.TestReport, record: CheckRecord) -> None:
        active, expired = self.book.find(record)
        if active is not None:
            record.outcome = "waived"
            record.waiver = SECRETS.mask(f"waived {active.describe()}")
            record.message = SECRETS.mask(f"{record.waiver} | {record.message}")
            if report.failed:
                report.outcome = "skipped"
                report.wasxfail = record.waiver  # type: ignore[attr-defined]
        elif expired is not None:
            day = expired.expires.isoformat()
            why = expired.describe()
            record.waiver = SECRETS.mask(f"waiver expired on {day}, the failure counts again ({why})")
            if report.failed and isinstance(report.longrepr, CheckRepr):
                report.longrepr.reprcrash.message += f" [waiver expired {day}]"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = self.book.lines()
        if lines:
            terminalreporter.write_sep("-", f"runbook waivers ({self.book.path.name})")
            for line in lines:
                terminalreporter.write_line(line, yellow=not line.startswith("waived"))


def configure(config: pytest.Config, path: Path | None, today: date) -> None:
    if path is None:
        return
    book = WaiverBook.of(path, today)
    config.stash[keys.WAIVERS] = book
    config.pluginmanager.register(Waivers(book), "runbook-waivers")
