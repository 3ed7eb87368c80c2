"""incident.md: the calendar runbook's incident notification (its section 5), filled in by the run.

Why: during an incident the on-call should paste, not type. `pytest -m incident` (or any run
with `--incident`) writes the runbook's template with what the run knows:

    [SEVERITY: P1]                       the worst failed check
    [SERVICE: AI Calendar Assistant]     the system(s) with failures (all checked ones if none)
    [TIME: 2026-01-11 10:30 UTC]         when the run started
    СИМПТОМЫ:                            each failed check with what it found, and since when
    ДЕЙСТВИЯ ПРЕДПРИНЯТЫ:                what was checked and passed
    ТЕКУЩИЙ СТАТУС:                      in progress, and where the report is
    ТРЕБУЕТСЯ:                           the runbook's remedies of the failed checks
    ETA:                                 unknown, with the escalation level (runbook.readers.escalation)
                                         for how long the worst failure has lasted (run history)

Plain Markdown that renders as the template reads: found values and remedies in code
spans, other text with Markdown's special characters escaped, hard line breaks in the
header. Headings are the runbook's Russian ones; `--incident-lang=en` writes English ones.
Every line is masked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runbook.describe.escalation import Escalation as Rules
from runbook.readers.changes import RunChanges, short_time
from runbook.readers.escalation import Escalation, escalate
from runbook.readers.safe_files import write_file
from runbook.record import SEVERITIES, CheckRecord
from runbook.secrets import SECRETS

LANGUAGES = ("ru", "en")
NAME = "incident.md"
HARD_BREAK = "  "  # Markdown's line break inside a paragraph: the header stays three lines

HEADINGS = {
    "ru": {
        "symptoms": "СИМПТОМЫ:",
        "actions": "ДЕЙСТВИЯ ПРЕДПРИНЯТЫ:",
        "status": "ТЕКУЩИЙ СТАТУС:",
        "required": "ТРЕБУЕТСЯ:",
        "eta": "ETA:",
    },
    "en": {
        "symptoms": "SYMPTOMS:",
        "actions": "ACTIONS TAKEN:",
        "status": "CURRENT STATUS:",
        "required": "REQUIRED:",
        "eta": "ETA:",
    },
}
WORDS = {
    "ru": {
        "none": "нет",
        "no_symptoms": "не обнаружено: все проверки прошли",
        "no_actions": "ни одна проверка не прошла",
        "in_progress": "В работе",
        "all_green": "Все проверки прошли",
        "report": "отчёт",
        "nothing_required": "ничего",
        "eta_unknown": "уточняется",
        "escalation": "эскалация",
        "since": "с",
        "runs": "прогонов подряд",
        "new": "впервые",
        "waived": "принято (waiver)",
        "checked": "проверок",
        "failed": "не прошли",
        "no_remedy": "см. runbook",
        "because": "следствие:",
    },
    "en": {
        "none": "none",
        "no_symptoms": "none: every check passed",
        "no_actions": "no check passed",
        "in_progress": "In progress",
        "all_green": "All checks passed",
        "report": "report",
        "nothing_required": "nothing",
        "eta_unknown": "to be determined",
        "escalation": "escalation",
        "since": "since",
        "runs": "runs in a row",
        "new": "first seen now",
        "waived": "accepted (waiver)",
        "checked": "checks",
        "failed": "failed",
        "no_remedy": "see the runbook",
        "because": "also failing because of",
    },
}
# What would change how a line renders: emphasis, code, HTML, a link; `_` inside a word is plain.
MARKDOWN_SPECIAL = re.compile(r"([\\`*<]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|\](?=\())")


@dataclass(frozen=True)
class Service:
    name: str
    title: str | None
    runbook: Path | None
    escalation: Rules | None = None  # the description's matrix; None: no level to name


def wanted(marker_expression: str | None, option: bool) -> bool:
    """`--incident`, or a marker expression that selects incident checks (`-m incident`)."""
    words = re.findall(r"[\w-]+", marker_expression or "")
    return option or ("incident" in words and "not incident" not in " ".join(words))


def render(
    records: Sequence[CheckRecord],
    *,
    services: Sequence[Service],
    started: datetime,
    now: datetime,
    changes: RunChanges | None,
    report: str | None,
    language: str = "ru",
) -> str:
    words, headings = WORDS[language], HEADINGS[language]
    checks = [record for record in records if record.kind != "collect"]
    failed = _worst_first([record for record in checks if record.failed])
    waived = [record for record in checks if record.outcome == "waived"]
    passed = [record for record in checks if record.outcome == "passed"]
    affected = {record.system for record in failed} or {record.system for record in checks}
    shown = [service for service in services if service.name in affected] or list(services)
    escalation = _escalation(failed, shown, changes, now)

    lines = [
        f"[SEVERITY: {failed[0].severity or '?' if failed else words['none']}]{HARD_BREAK}",
        f"[SERVICE: {_text(', '.join(_service(service) for service in shown))}]{HARD_BREAK}",
        f"[TIME: {started.strftime('%Y-%m-%d %H:%M')} UTC]",
        "",
        headings["symptoms"],
    ]
    causes = {record.id: record for record in failed}
    ordered = []  # each cause, then its symptoms under it
    for record in failed:
        if record.cause not in causes:
            ordered += [record, *(symptom for symptom in failed if symptom.cause == record.id)]
    ordered += [record for record in failed if record not in ordered]
    lines += [_symptom(record, changes, words, now, causes.get(record.cause or "")) for record in ordered]
    lines += [f"- {_headline(record)}: {_code(_found(record))} — {words['waived']}" for record in waived]
    if not failed and not waived:
        lines.append(f"- {words['no_symptoms']}")
    lines += ["", headings["actions"]]
    lines += [f"{number}. {_headline(record)} - OK" for number, record in enumerate(passed, 1)]
    if not passed:
        lines.append(f"1. {words['no_actions']}")
    status = words["in_progress"] if failed else words["all_green"]
    counts = f"{len(checks)} {words['checked']}, {len(failed)} {words['failed']}"
    where = f"; {words['report']}: {_code(report)}" if report else ""
    lines += ["", f"{headings['status']} {status} ({counts}{where})", "", headings["required"]]
    # One outage, one remedy: a symptom's cause has its own line (redis down, not /ready too).
    lines += [
        f"- {_headline(record)}: {_code(record.remedy or words['no_remedy'])}"
        for record in failed
        if record.cause not in causes
    ]
    if not failed:
        lines.append(f"- {words['nothing_required']}")
    eta = words["eta_unknown"]
    if escalation is not None:
        eta += f" ({words['escalation']}: {_text(escalation.text(language))})"
    lines += ["", f"{headings['eta']} {eta}", ""]
    return SECRETS.mask("\n".join(lines))


def _worst_first(records: list[CheckRecord]) -> list[CheckRecord]:
    order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    return sorted(records, key=lambda record: order.get(record.severity or "", len(order)))


def _escalation(
    failed: list[CheckRecord], services: Sequence[Service], changes: RunChanges | None, now: datetime
) -> Escalation | None:
    """The worst failure's level: highest severity, then the longest-lasting of those."""
    if not failed:
        return None
    worst = [record for record in failed if record.severity == failed[0].severity]

    def lasted(record: CheckRecord) -> float:
        change = changes.of(record.id) if changes is not None else None
        return change.lasted(now) if change is not None else 0.0

    record = max(worst, key=lasted)
    service = next((service for service in services if service.name == record.system), None)
    if service is None or service.escalation is None:
        return None  # its runbook has no escalation matrix
    return escalate(service.escalation, record.severity or "", lasted(record), service.runbook)


def _symptom(
    record: CheckRecord,
    changes: RunChanges | None,
    words: dict[str, str],
    now: datetime,
    cause: CheckRecord | None = None,
) -> str:
    change = changes.of(record.id) if changes is not None else None
    if change is None or change.status == "new":
        when = words["new"]
    else:
        when = f"{words['since']} {short_time(change.since)}, {change.runs} {words['runs']}"
    because = f" — {words['because']} {_text(cause.title)} ({_text(cause.id)})" if cause else ""
    return f"{'  ' if cause else ''}- {_headline(record)}: {_code(_found(record))} ({when}){because}"


def _headline(record: CheckRecord) -> str:
    severity = f"[{record.severity}] " if record.severity else ""
    return _text(f"{severity}{record.title} ({record.id})")


def _found(record: CheckRecord) -> str:
    return record.found or record.message or record.outcome


def _service(service: Service) -> str:
    return f"{service.title} ({service.name})" if service.title else service.name


def _text(text: str) -> str:
    """One line of prose, Markdown's special characters escaped."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code(text: str) -> str:
    """One line in a code span, fenced with more backticks than it contains."""
    flat = " ".join(text.split())
    runs = [len(run) for run in re.findall(r"`+", flat)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def write(path: Path, text: str) -> Path:
    return write_file(path, text)
