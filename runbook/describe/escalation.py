"""A system's escalation matrix, as its runbook states it: who is on a failure, by how long it lasts.

Why in the description: the matrix is one runbook's (the calendar's "Правила эскалации"); a
suite-wide file applied it to systems whose runbooks say nothing of the kind. A description
that has no `escalation:` gets none, and incident.md's ETA names no level for it.

A step applies while the failure has lasted less than `until_minutes`; the last step of each
severity is open (`until_minutes: open`: for as long as the failure lasts). Severities not
listed are handled by `unescalated`'s level. `ru`/`en` are the step's words for incident.md
(the runbook's line, shortened to fit in the middle of a sentence).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from runbook.describe.model import Source

OPEN = "open"  # until_minutes of a last step: for as long as the failure lasts
LEVELS = ("L1", "L2", "L3", "L4")

Level = Literal["L1", "L2", "L3", "L4"]
Severity = Literal["P1", "P2", "P3", "P4"]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]


class EscalationRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Level
    ru: Text
    en: Text


class EscalationStep(EscalationRule):
    until_minutes: float = Field(
        description=f"minutes the failure has lasted, below which this step applies; {OPEN!r} for the last"
    )

    @field_validator("until_minutes", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> float:
        if value == OPEN:
            return math.inf
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ValueError(f"must be a number of minutes above 0, or {OPEN!r} (the last step)")
        return float(value)


def _ordered(steps: list[EscalationStep]) -> list[EscalationStep]:
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


class Escalation(BaseModel):
    """The runbook's escalation matrix: roles L1-L4 and, per severity, the steps in time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source | None = Field(default=None, description="where the runbook states the matrix")
    roles: dict[Level, Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        description="L1..L4 -> role; a contacts table in the runbook (| **L2** | Tech Lead | mail |) adds who"
    )
    matrix: dict[Severity, Annotated[list[EscalationStep], Field(min_length=1), AfterValidator(_ordered)]]
    unescalated: EscalationRule = Field(description="who handles the severities the matrix does not list")

    @field_validator("roles")
    @classmethod
    def _every_level(cls, roles: dict[str, str]) -> dict[str, str]:
        missing = [level for level in LEVELS if level not in roles]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return roles
