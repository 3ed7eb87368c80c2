"""Who to call: the escalation matrix (L1-L4) of the calendar runbook's section 5.

Why: an incident ticket should say who is on it now, and that depends on how long the worst
failure has lasted (from the run history), not on when someone happened to run the suite.
The rules are the calendar runbook's "Правила эскалации" (the only matrix among the runbooks,
so it applies to every system); the contacts are read from the system's own runbook
("Контакты для эскалации": `| **L2** | Tech Lead | tech-lead@example.com | ... |`) when it
has that table, else only the role is named.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from runbook.readers.changes import span


@dataclass(frozen=True)
class Step:
    """While a failure has lasted less than `until_minutes`, `level` is on it."""

    until_minutes: float
    level: str
    ru: str
    en: str


MATRIX: dict[str, tuple[Step, ...]] = {
    "P1": (
        Step(5, "L1", "0-5 мин: L1 начинает диагностику", "0-5 min: L1 starts diagnosis"),
        Step(15, "L2", "5-15 мин: нет прогресса → эскалация на L2", "5-15 min: no progress → escalate to L2"),
        Step(30, "L3", "15-30 мин: нет решения → эскалация на L3", "15-30 min: no fix → escalate to L3"),
        Step(60, "L4", "30-60 мин: эскалация на L4", "30-60 min: escalate to L4"),
        Step(math.inf, "L4", "> 60 мин: постмортем обязателен", "> 60 min: postmortem required"),
    ),
    "P2": (
        Step(15, "L1", "0-15 мин: L1 начинает диагностику", "0-15 min: L1 starts diagnosis"),
        Step(
            240, "L2", "15-60 мин: нет прогресса → эскалация на L2", "15-60 min: no progress → escalate to L2"
        ),
        Step(math.inf, "L2", "> 4 часов: постмортем рекомендован", "> 4 hours: postmortem recommended"),
    ),
}
# P3/P4 are not escalated by the matrix: the on-call handles them.
UNESCALATED = Step(math.inf, "L1", "P3/P4 матрица не эскалирует", "P3/P4 are not escalated by the matrix")
ROLES = {"L1": "On-call Engineer", "L2": "Tech Lead", "L3": "DevOps/SRE", "L4": "Management"}
CONTACT_ROW = re.compile(r"^\|\s*\**(L[1-4])\**\s*\|([^|]*)\|([^|]*)\|")


@dataclass(frozen=True)
class Escalation:
    severity: str
    level: str
    role: str
    contact: str | None
    rule: Step
    lasted: float  # seconds the worst failure has lasted

    def text(self, language: str) -> str:
        """'L2 — Tech Lead, tech-lead@example.com; P1 длится 17 min (5-15 мин: ...)'."""
        who = f"{self.level} — {self.role}" + (f", {self.contact}" if self.contact else "")
        rule = self.rule.ru if language == "ru" else self.rule.en
        lasts = "длится" if language == "ru" else "has lasted"
        return f"{who}; {self.severity} {lasts} {span(self.lasted)} ({rule})"


def escalate(severity: str, lasted: float, runbook: Path | None = None) -> Escalation:
    """The level for a failure of `severity` that has lasted `lasted` seconds."""
    steps = MATRIX.get(severity, (UNESCALATED,))
    step = next(step for step in steps if lasted < step.until_minutes * 60)
    contacts = read_contacts(runbook) if runbook is not None else {}
    role, contact = contacts.get(step.level, (ROLES[step.level], None))
    return Escalation(severity, step.level, role, contact, step, lasted)


def read_contacts(runbook: Path) -> dict[str, tuple[str, str | None]]:
    """level -> (role, contact) from the runbook's contacts table; {} when it has none."""
    try:
        text = runbook.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    contacts: dict[str, tuple[str, str | None]] = {}
    for line in text.splitlines():
        match = CONTACT_ROW.match(line.strip())
        if match:
            role, contact = match.group(2).strip(), match.group(3).strip()
            contacts[match.group(1)] = (role or ROLES[match.group(1)], contact or None)
    return contacts
