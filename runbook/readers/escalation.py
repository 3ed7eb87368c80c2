"""Who to call: a system's escalation matrix (its description's `escalation:`) applied to a failure.

Why: an incident ticket should say who is on it now, and that depends on how long the worst
failure has lasted (from the run history), not on when someone happened to run the suite.
The rules are the system's own (runbook.describe.escalation: the calendar runbook's
"Правила эскалации", quoted with its lines); a system whose runbook has no matrix has none.
The contacts are read from the system's runbook ("Контакты для эскалации": `| **L2** | Tech
Lead | tech-lead@example.com | ... |`) when it has that table, else only the role is named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from runbook.describe.escalation import Escalation as Rules
from runbook.describe.escalation import EscalationRule
from runbook.readers.changes import span

CONTACT_ROW = re.compile(r"^\|\s*\**(L[1-4])\**\s*\|([^|]*)\|([^|]*)\|")


@dataclass(frozen=True)
class Escalation:
    severity: str
    level: str
    role: str
    contact: str | None
    rule: EscalationRule  # the step that applies (a matrix step, or `unescalated`)
    lasted: float  # seconds the worst failure has lasted

    def text(self, language: str) -> str:
        """'L2 — Tech Lead, tech-lead@example.com; P1 длится 17 min (5-15 мин: ...)'."""
        who = f"{self.level} — {self.role}" + (f", {self.contact}" if self.contact else "")
        rule = self.rule.ru if language == "ru" else self.rule.en
        lasts = "длится" if language == "ru" else "has lasted"
        return f"{who}; {self.severity} {lasts} {span(self.lasted)} ({rule})"


def escalate(rules: Rules, severity: str, lasted: float, runbook: Path | None = None) -> Escalation:
    """The level of `rules` for a failure of `severity` that has lasted `lasted` seconds."""
    steps = rules.matrix.get(severity)  # type: ignore[call-overload]
    # the last step is open (until_minutes infinite): one always applies
    step = next(s for s in steps if lasted < s.until_minutes * 60) if steps else rules.unescalated
    contacts = read_contacts(runbook) if runbook is not None else {}
    role, contact = contacts.get(step.level, (rules.roles[step.level], None))  # type: ignore[index]
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
            contacts[match.group(1)] = (role or match.group(1), contact or None)
    return contacts
