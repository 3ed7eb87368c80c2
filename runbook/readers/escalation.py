"""Who to call: the escalation matrix (L1-L4) of the calendar runbook's section 5.

Why: an incident ticket should say who is on it now, and that depends on how long the worst
failure has lasted (from the run history), not on when someone happened to run the suite.
The rules are the calendar runbook's "Правила эскалации" (the only matrix among the runbooks,
so it applies to every system), kept as data in escalation.yml beside this module (which
quotes the runbook's lines); the contacts are read from the system's own runbook
("Контакты для эскалации": `| **L2** | Tech Lead | tech-lead@example.com | ... |`) when it
has that table, else only the role is named. A malformed escalation.yml stops the import with
its path and the field at fault.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from runbook.describe.yamlfile import YamlFileError, read_yaml
from runbook.readers.changes import span

RULES_FILE = Path(__file__).with_name("escalation.yml")
OPEN = "open"  # until_minutes of a last step: for as long as the failure lasts


@dataclass(frozen=True)
class Step:
    """While a failure has lasted less than `until_minutes`, `level` is on it."""

    until_minutes: float
    level: str
    ru: str
    en: str


class RulesError(ValueError):
    """escalation.yml cannot be used; the message names the file and each field at fault."""


Level = Literal["L1", "L2", "L3", "L4"]
Severity = Literal["P1", "P2", "P3", "P4"]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Level
    ru: Text
    en: Text


class _Step(_Rule):
    until_minutes: float

    @field_validator("until_minutes", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> float:
        if value == OPEN:
            return math.inf
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ValueError(f"must be a number of minutes above 0, or {OPEN!r} (the last step)")
        return float(value)


def _ordered(steps: list[_Step]) -> list[_Step]:
    """Each step ends later than the one before; the last one, and only it, is open."""
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        if last and step.until_minutes != math.inf:
            raise ValueError(f"the last step ([{index}]) must have until_minutes: {OPEN}")
        if not last and step.until_minutes == math.inf:
            raise ValueError(f"only the last step may be open, not [{index}]")
        if index and step.until_minutes <= steps[index - 1].until_minutes:
            now, before = step.until_minutes, steps[index - 1].until_minutes
            raise ValueError(f"[{index}].until_minutes ({now:g}) must be above [{index - 1}]'s ({before:g})")
    return steps


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: dict[Level, Annotated[str, Field(min_length=1, max_length=100)]]
    matrix: dict[Severity, Annotated[list[_Step], Field(min_length=1), AfterValidator(_ordered)]]
    unescalated: _Rule

    @field_validator("roles")
    @classmethod
    def _every_level(cls, roles: dict[str, str]) -> dict[str, str]:
        missing = [level for level in ("L1", "L2", "L3", "L4") if level not in roles]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return roles


@dataclass(frozen=True)
class Rules:
    matrix: dict[str, tuple[Step, ...]]
    unescalated: Step
    roles: dict[str, str]


def load_rules(path: Path = RULES_FILE) -> Rules:
    """The matrix of an escalation file, or RulesError naming the file and the fields at fault."""
    try:
        data = read_yaml(path)
    except YamlFileError as exc:
        raise RulesError(f"escalation rules: {exc}") from None
    try:
        rules = _Rules.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  {_where(error['loc'])}: {_message(error)}" for error in exc.errors())
        raise RulesError(f"escalation rules: {path}:\n{problems}") from None
    return Rules(
        matrix={
            severity: tuple(Step(step.until_minutes, step.level, step.ru, step.en) for step in steps)
            for severity, steps in rules.matrix.items()
        },
        unescalated=Step(math.inf, rules.unescalated.level, rules.unescalated.ru, rules.unescalated.en),
        roles=dict(rules.roles),
    )


def _where(location: tuple[int | str, ...]) -> str:
    """('matrix', 'P1', 2, 'level') -> 'matrix.P1[2].level'; a bad key: 'matrix.P7 (key)'."""
    where = ""
    for part in location:
        if part == "[key]":
            where += " (key)"
        else:
            where += f"[{part}]" if isinstance(part, int) else f".{part}"
    return where.lstrip(".") or "(top level)"


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "model_type":
        return "must be a mapping with roles, matrix and unescalated"
    return message


RULES = load_rules()
MATRIX: dict[str, tuple[Step, ...]] = RULES.matrix
# P3/P4 are not escalated by the matrix: the on-call handles them.
UNESCALATED = RULES.unescalated
ROLES = RULES.roles
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
