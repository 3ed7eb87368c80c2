"""What of a runbook is checked: its statement inventory, and the checks' quotes held against it.

A production description asserts what its runbook states. Each check cites its lines
(`source: {lines: 120-124, quote: "..."}`); the inventory (`coverage:` of the description,
e.g. systems/coverage/map-v12.yml) lists every checkable statement of the runbook with its
status: checked by ids, partly (and what is missing), or not checked with the reason. Both
hold quotes of the runbook, so an edit that moves or rewrites a statement shows up as drift.
`python -m runbook coverage` prints the numbers; selftests/test_traceability.py holds the
production files to them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from runbook.describe.model import Model, Source
from runbook.describe.yamlfile import YamlFileError, read_text, read_yaml

# Why a statement is not checked: a reviewer must be able to accept the category and the reason.
Reason = Literal[
    "action",  # a step to take (restart, restore, edit), not a state to verify
    "external",  # a service outside the suite's reach (Telegram, a payment provider, a cloud console)
    "people",  # a rule for people or process (who to call, what not to do by hand)
    "writes",  # verifying it would change the system beyond what the suite may do
    "history",  # about the past or a one-off event, not a standing state
    "covered-elsewhere",  # the same fact as another statement, checked there
]
REASONS: tuple[str, ...] = Reason.__args__  # type: ignore[attr-defined]


class Statement(Source):
    """One checkable statement of the runbook and how the suite covers it."""

    verify: str = Field(min_length=3, description="what is to be verified, in a few words")
    checked: list[str] = Field(default=[], description="check ids that verify it fully")
    partly: list[str] = Field(default=[], description="check ids that verify part of it")
    not_checked: Reason | None = None
    reason: str | None = Field(default=None, description="why not (or, with partly, what is missing)")

    @model_validator(mode="after")
    def _one_status(self) -> Statement:
        statuses = [bool(self.checked), bool(self.partly), self.not_checked is not None]
        if sum(statuses) != 1:
            raise ValueError("set exactly one of checked, partly, not_checked")
        if (self.partly or self.not_checked) and not self.reason:
            raise ValueError("partly and not_checked need a reason")
        return self

    @property
    def status(self) -> str:
        if self.checked:
            return "checked"
        return "partly" if self.partly else "not checked"

    @property
    def ids(self) -> list[str]:
        return [*self.checked, *self.partly]


class Inventory(Model):
    """The statement inventory of one runbook."""

    system: str
    severity: str | None = Field(
        default=None, description="how severities were chosen where the runbook has no table of them"
    )
    statements: list[Statement] = Field(min_length=1)


class InventoryError(Exception):
    """The inventory file cannot be read or is not valid: said with its file and field."""


def read_inventory(path: Path) -> Inventory:
    try:
        data = read_yaml(path)
        return Inventory.model_validate(data)
    except YamlFileError as exc:
        raise InventoryError(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InventoryError(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}") from None


def runbook_lines(path: Path) -> list[str]:
    return read_text(path).splitlines()  # the reader's limits: a regular file, at most 1 MiB


def _words(text: str) -> str:
    return " ".join(text.split())


def quoted_at(lines: list[str], source: Source) -> bool:
    """Whether the quote stands in the source's lines (white space folded)."""
    first, last = source.span
    if last > len(lines):
        return False
    return _words(source.quote) in _words(" ".join(lines[first - 1 : last]))


def where_quoted(lines: list[str], quote: str) -> list[int]:
    """Lines where a quote now starts (to say where a drifted statement went)."""
    wanted = _words(quote)
    return [number for number, line in enumerate(lines, 1) if wanted[:40] in _words(line)]


@dataclass
class CheckSource:
    """A check's id and the sources it cites, read from a description file."""

    check_id: str
    kind: str
    sources: list[Source] = field(default_factory=list)


def described_checks(data: dict[str, Any]) -> list[CheckSource]:
    """The checks of a description's data (extends resolved), with their `source:`."""
    found = []
    for kind, listed in (data.get("checks") or {}).items():
        for entry in listed or []:
            if not isinstance(entry, dict) or "id" not in entry:
                continue
            raw = entry.get("source")
            raw = [raw] if isinstance(raw, dict) else raw or []
            found.append(CheckSource(str(entry["id"]), kind, [Source.model_validate(item) for item in raw]))
    return found


@dataclass
class Coverage:
    system: str
    statements: int
    checked: int
    partly: int
    reasons: Counter[str]

    @property
    def not_checked(self) -> int:
        return sum(self.reasons.values())

    def line(self) -> str:
        why = ", ".join(f"{reason} {count}" for reason, count in sorted(self.reasons.items()))
        return (
            f"{self.system}: {self.statements} statements / {self.checked} checked / "
            f"{self.partly} partly / {self.not_checked} not checked" + (f" ({why})" if why else "")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "statements": self.statements,
            "checked": self.checked,
            "partly": self.partly,
            "not_checked": self.not_checked,
            "reasons": dict(sorted(self.reasons.items())),
        }


def coverage_of(inventory: Inventory) -> Coverage:
    statuses = Counter(statement.status for statement in inventory.statements)
    reasons = Counter(str(s.not_checked) for s in inventory.statements if s.not_checked is not None)
    return Coverage(
        inventory.system, len(inventory.statements), statuses["checked"], statuses["partly"], reasons
    )


def problems(inventory: Inventory, checks: list[CheckSource], lines: list[str], *, where: str) -> list[str]:
    """Drift and loose ends: quotes no longer at their lines, ids that do not exist, sources
    no statement covers. Empty when the description, the inventory and the runbook agree."""
    found = []
    ids = {check.check_id for check in checks}
    for number, statement in enumerate(inventory.statements):
        place = f"{where}: statements[{number}] (lines {statement.lines})"
        if not quoted_at(lines, statement):
            found.append(f"{place}: «{statement.quote}» is not at those lines{_now_at(lines, statement)}")
        for check_id in statement.ids:
            if check_id not in ids:
                found.append(f"{place}: no check {check_id!r} in the description")
    for check in checks:
        for source in check.sources:
            if not quoted_at(lines, source):
                found.append(f"check {check.check_id}: {source}: not at those lines{_now_at(lines, source)}")
            elif not any(
                check.check_id in statement.ids and _overlap(statement.span, source.span)
                for statement in inventory.statements
            ):
                found.append(f"check {check.check_id}: lines {source.lines} are in no statement naming it")
    return found


def _now_at(lines: list[str], source: Source) -> str:
    now = where_quoted(lines, source.quote)
    return f" (now at line {', '.join(map(str, now))})" if now else ""


def _overlap(one: tuple[int, int], other: tuple[int, int]) -> bool:
    return one[0] <= other[1] and other[0] <= one[1]


@dataclass
class SystemCoverage:
    """One description's coverage (None without an inventory) and what does not agree."""

    path: Path
    system: str
    coverage: Coverage | None
    problems: list[str]


def description_files(location: Path) -> list[Path]:
    if location.is_dir():
        return sorted(p for p in location.iterdir() if p.suffix in {".yml", ".yaml"})
    return [location]


def system_coverage(path: Path) -> SystemCoverage:
    """The coverage of one description file; DescriptionError / InventoryError if unreadable."""
    from runbook.describe.loader import resolve_chain

    data, _ = resolve_chain(path)
    system = str(data.get("system", path.stem))
    location = data.get("coverage")
    if not isinstance(location, str):
        return SystemCoverage(path, system, None, [f"{path}: no statement inventory (coverage:)"])
    inventory = read_inventory(Path(location))
    lines = runbook_lines(Path(str(data.get("runbook"))))
    checks = described_checks(data)
    found = problems(inventory, checks, lines, where=location)
    found += [
        f"check {check.check_id}: no source: (the runbook lines it asserts)"
        for check in checks
        if not check.sources
    ]
    return SystemCoverage(path, system, coverage_of(inventory), found)
