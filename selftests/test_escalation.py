"""The escalation matrix as data: the calendar description's `escalation:` against its runbook.

The block must say what the calendar runbook's "Правила эскалации" says (its quotes are the
runbook's lines at the line numbers it names, and its texts are those lines with only the
shortenings its comment lists), and a wrong field must stop the load naming the file and field.
Only the calendar runbook has a matrix: no other production description carries one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from runbook.describe.escalation import Escalation
from runbook.describe.loader import DescriptionError, load_file
from selftests.readers_kit import CALENDAR_RUNBOOK, ROOT, calendar_escalation

CALENDAR = ROOT / "systems" / "ai-calendar-assistant.yml"
MATRIX = Escalation.model_validate(calendar_escalation()).matrix
QUOTED = re.compile(r"^# Lines (\d+)-(\d+),")


def runbook_lines() -> list[str]:
    if not CALENDAR_RUNBOOK.is_file():
        pytest.skip(f"{CALENDAR_RUNBOOK} is not beside the repository")
    return CALENDAR_RUNBOOK.read_text(encoding="utf-8").splitlines()


def quotes() -> list[tuple[int, int, list[str]]]:
    """(first line, last line, quoted text) of each '# Lines A-B, ...' quote in the YAML's comment."""
    lines = CALENDAR.read_text(encoding="utf-8").splitlines()
    found = []
    for index, line in enumerate(lines):
        match = QUOTED.match(line)
        if not match:
            continue
        rest = lines[index + 1 :]
        start = next(i for i, text in enumerate(rest) if text.startswith("#   "))
        block: list[str] = []
        for text in rest[start:]:
            if text.startswith("#   "):
                block.append(text[4:])
            elif text == "#" and block:
                block.append("")
            else:
                break
        while block and not block[-1]:
            block.pop()
        found.append((int(match.group(1)), int(match.group(2)), block))
    return found


def test_quotes_are_the_runbooks_lines() -> None:
    lines = runbook_lines()
    found = quotes()
    assert [(first, last) for first, last, _ in found] == [(655, 660), (662, 676)]
    for first, last, block in found:
        assert block == lines[first - 1 : last], (first, last)


def test_texts_are_the_runbooks_steps() -> None:
    """Each severity's steps, in order: the runbook's words with the listed shortenings only."""
    lines = runbook_lines()
    section = lines[lines.index("### Правила эскалации") :]
    steps: dict[str, list[str]] = {}
    severity = ""
    for line in section[: section.index("### Шаблон уведомления об инциденте")]:
        if re.match(r"^P\d \w+:$", line):
            severity = line[:2]
        elif line.startswith(("├── ", "└── ")):
            text = line[4:].replace("Если нет ", "нет ").replace("мин: → ", "мин: ")
            text = re.sub(r": Постмортем", ": постмортем", text)
            steps.setdefault(severity, []).append(text)
    assert steps == {severity: [step.ru for step in rules] for severity, rules in MATRIX.items()}


def test_levels_follow_the_runbook() -> None:
    """'→ эскалация на L3' names the step's level; the first step is L1, the last is open."""
    for rules in MATRIX.values():
        assert rules[0].level == "L1"
        assert rules[-1].until_minutes == float("inf")
        for step in rules:
            named = re.search(r"на (L\d)$", step.ru)
            assert named is None or named.group(1) == step.level, step


def test_only_the_calendar_description_has_a_matrix() -> None:
    for path in sorted((ROOT / "systems").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert ("escalation" in data) == (path == CALENDAR), path.name


def escalation_block() -> str:
    """The calendar description's `escalation:` block, as written."""
    lines = CALENDAR.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index("escalation:\n")
    end = next(i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "\n", "#"))
    return "".join(lines[start:end])


def load_with(tmp_path: Path, block: str) -> str:
    """Load a description holding `block`; the DescriptionError's text."""
    (tmp_path / "runbook.md").write_text("# runbook\n", encoding="utf-8")
    description = tmp_path / "shop.yml"
    description.write_text(
        "system: shop\nrunbook: runbook.md\nhosts: {local: 'local://'}\n"
        + block
        + "checks:\n  files:\n    - {id: etc, title: etc, path: /etc, severity: P4, section: x, remedy: x}\n",
        encoding="utf-8",
    )
    with pytest.raises(DescriptionError) as raised:
        load_file(description)
    assert str(description.name) in str(raised.value)
    return str(raised.value)


NOT_MINUTES = "must be a number of minutes above 0, or 'open' (the last step)"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            ("level: L3", "level: L5"),
            "escalation.matrix.P1[2].level: Input should be 'L1', 'L2', 'L3' or 'L4'",
        ),
        (
            ("- until_minutes: 30", "- until_minutes: 10"),
            "escalation.matrix.P1: [2].until_minutes (10) must be above [1]'s (15)",
        ),
        (
            ("- until_minutes: 5\n", '- until_minutes: "5"\n'),
            f"escalation.matrix.P1[0].until_minutes: {NOT_MINUTES}",
        ),
        (
            ("- until_minutes: 240", "- until_minutes: -1"),
            f"escalation.matrix.P2[1].until_minutes: {NOT_MINUTES}",
        ),
        (('en: "0-5 min', 'eng: "0-5 min'), "escalation.matrix.P1[0].en: Field required"),
        (("    L4: Management\n", ""), "escalation.roles: missing L4"),
        (("    P2:\n", "    P7:\n"), "escalation.matrix.P7"),
        (
            ('ru: "0-5 мин: L1 начинает диагностику"', 'ru: " "'),
            "escalation.matrix.P1[0].ru: String should match",
        ),
        (("  unescalated:", "  unescalated: 3\n  old:"), "escalation.old: Extra inputs are not permitted"),
    ],
)
def test_a_wrong_field_is_named_with_the_file(tmp_path: Path, edit: tuple[str, str], problem: str) -> None:
    block = escalation_block()
    assert edit[0] in block
    assert problem in load_with(tmp_path, block.replace(edit[0], edit[1], 1))


def test_an_open_step_before_the_last_and_a_closed_last_step(tmp_path: Path) -> None:
    block = escalation_block()
    message = load_with(tmp_path, block.replace("until_minutes: 60\n", "until_minutes: open\n"))
    assert "escalation.matrix.P1: only the last step may be open, not [3]" in message
    lines = block.splitlines(keepends=True)
    last_open = max(i for i, line in enumerate(lines) if line.strip() == "- until_minutes: open")
    lines[last_open] = lines[last_open].replace("open", "600")
    message = load_with(tmp_path, "".join(lines))
    assert "escalation.matrix.P2: the last step ([2]) must have until_minutes: open" in message
