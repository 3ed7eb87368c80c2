"""The run record: what one check (or any test) became, as one typed object.

Built once per test by `runbook.run.verdict`, kept in `item.stash[RECORD]`, and
attached to each of the test's reports (`record_of(report)`), so every writer
(terminal, JUnit, HTML, summary.json, history) reads the same facts and none
reads another writer. It travels with the report to an xdist controller
(`to_json` / `from_json`). Its strings are masked when the verdict finishes a
phase: the one boundary where records leave the check.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from runbook.secrets import SECRETS

# "waived": a failure a waiver file accepts (runbook.readers.waivers); it does not fail the run.
OUTCOMES: tuple[str, ...] = ("passed", "failed", "skipped", "error", "waived")
SEVERITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
CUSTOM_KIND = "custom"
EVIDENCE_LINES = 40


@dataclass
class CheckRecord:
    """One check of one system on one host, and how it went."""

    system: str
    check_id: str
    kind: str
    title: str
    nodeid: str
    aspect: str | None = None
    host: str | None = None
    severity: str | None = None
    section: str | None = None
    runbook: str | None = None  # 'ai-calendar-assistant.md § 4.1 Backups'
    runbook_path: str | None = None
    source: str | None = None  # 'lines 120-124: «docker compose ps»': what the runbook says, quoted
    after: list[str] = field(default_factory=list)  # check ids whose failure would explain this one
    provides: list[str] = field(default_factory=list)  # what it asserts runs ('container redis')
    needs: list[str] = field(default_factory=list)  # what it looks at; a failing provider explains it
    cause: str | None = None  # the failing check (system:id) this failure is a symptom of
    remedy: str | None = None
    markers: list[str] = field(default_factory=list)
    outcome: str = "passed"
    expected: str | None = None
    found: str | None = None
    message: str = ""
    evidence: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0
    phases: list[str] = field(default_factory=list)
    waiver: str | None = None  # the waiver that accepted (or, expired, no longer accepts) the failure
    ready_after: float | None = None  # --wait-ready: seconds from the run's start until it turned green
    attempts: int = 1

    @property
    def id(self) -> str:
        return f"{self.system}:{self.check_id}"

    @property
    def is_check(self) -> bool:
        """A runbook check (from a description), not a custom test or a collection error."""
        return self.kind not in {CUSTOM_KIND, "collect"}

    @property
    def failed(self) -> bool:
        return self.outcome in {"failed", "error"}

    def ci_message(self) -> str:
        """The one line a CI UI shows: '[P2] §4.1 Backups: newest backup 26.1h old > 25h'."""
        where = f" §{self.section}" if self.section else ""
        found = " ".join((self.found or self.message or "failed").split())
        return f"[{self.severity or '?'}]{where}: {found}"

    def failure_text(self) -> str:
        """What the terminal and JUnit's failure body show instead of a traceback."""
        lines = [f"[{self.severity}] {self.title} ({self.id})"]
        if self.expected:
            lines.append(f"expected: {self.expected}")
        lines.append(f"found:    {self.found}")
        lines.append(f"remedy:   {self.remedy}")
        lines.append(f"runbook:  {self.runbook}")
        if self.source:
            lines.append(f"says:     {self.source}")
        for name, text in self.evidence.items():
            if text:
                lines.append(f"--- {name} ---")
                lines.extend(text.splitlines()[-EVIDENCE_LINES:])
        return "\n".join(lines)

    def masked(self) -> CheckRecord:
        """A copy with every string passed through the secret registry.

        Field by field (the values are strings, numbers and lists and dicts of strings): going
        through `to_json` deep-copied every record three times a test, a fifth of a cheap check."""
        return CheckRecord(**{name: mask_all(getattr(self, name)) for name in FIELD_NAMES})

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["id"] = self.id
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckRecord:
        return cls(**{key: value for key, value in data.items() if key in FIELD_NAMES})


FIELD_NAMES: tuple[str, ...] = tuple(item.name for item in dataclasses.fields(CheckRecord))


# Control characters a host's output may carry: ESC sequences would clear or recolour the
# on-call's terminal ("FAKE: all checks passed"), and XML cannot hold most of them. Kept: \t \n.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Control characters shown as \\xNN, as binary output is."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def link_causes(records: list[CheckRecord]) -> None:
    """Set `cause` on each failure explained by another failure of the same run: one outage,
    one story (redis down is the cause; /ready's redis=error and the bot's errors its symptoms).

    First the check's own `after:` (a check of a group looks on its own host first:
    `redis-ping@replica-2`); else, inferred, a failing check of the same system and host that
    asserts a thing this one needs runs (`redis-running`, state: running of container
    calendar-redis, explains the failing checks that read that container)."""
    failed = {record.id: record for record in records if record.failed and record.is_check}
    for record in failed.values():
        record.cause = _named_cause(record, failed) or _inferred_cause(record, failed)


def _named_cause(record: CheckRecord, failed: dict[str, CheckRecord]) -> str | None:
    host = record.check_id.partition("@")[2]
    for wanted in record.after:
        for candidate in (f"{record.system}:{wanted}@{host}" if host else "", f"{record.system}:{wanted}"):
            if candidate in failed and candidate != record.id:
                return candidate
    return None


def _inferred_cause(record: CheckRecord, failed: dict[str, CheckRecord]) -> str | None:
    if not record.needs:
        return None
    for candidate in failed.values():
        if (
            candidate.id != record.id
            and candidate.system == record.system
            and candidate.host == record.host
            and set(candidate.provides) & set(record.needs)
            and record.check_id.partition("@")[0] not in candidate.after  # never each other's cause
        ):
            return candidate.id
    return None


def mask_all(value: Any) -> Any:
    """Mask every string of a JSON-able structure (before encoding: escapes would hide a secret),
    and make its control characters visible (a host's output never drives the terminal)."""
    if isinstance(value, str):
        return visible(SECRETS.mask(value))
    if isinstance(value, dict):
        return {mask_all(key): mask_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_all(item) for item in value]
    return value


def summary_text(document: dict[str, Any]) -> str:
    """summary.json's text: indented, each of its checks on one line.

    json's C encoder runs only without `indent`; the pure-Python one was 70 % of writing a
    summary of thousands of checks. One line per check still reads and greps as a list.
    """
    checks = document.get("checks") or []
    placeholder = f"checks-{uuid.uuid4().hex}"
    text = json.dumps({**document, "checks": placeholder}, indent=2)
    rows = ",\n".join(f"    {json.dumps(check)}" for check in checks)
    return text.replace(json.dumps(placeholder), f"[\n{rows}\n  ]" if checks else "[]", 1) + "\n"


def crash_text(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The one line a report's failure or skip says (its crash message, or its last line)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    lines = str(longrepr or "").strip().splitlines()
    return lines[-1] if lines else ""


def custom_record(nodeid: str) -> CheckRecord:
    """A test that is no runbook check (a custom check, a collection error): named by its node id."""
    path, _, name = nodeid.partition("::")
    return CheckRecord(
        system=path or CUSTOM_KIND, check_id=name or path, kind=CUSTOM_KIND, title=name or path, nodeid=nodeid
    )


def record_of(report: pytest.TestReport | pytest.CollectReport) -> CheckRecord | None:
    """The record a report carries (set by the verdict, also after an xdist round trip)."""
    record = getattr(report, "runbook_record", None)
    return record if isinstance(record, CheckRecord) else None


def attach(report: pytest.TestReport, record: CheckRecord) -> None:
    report.runbook_record = record  # type: ignore[attr-defined]
