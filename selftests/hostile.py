"""Hostile descriptions (issue 6): files that once crashed, hung or ate the machine.

Shared by selftests/test_hostile_descriptions.py, which proves each is refused with
one message naming the file, and bench/bench_hostile_descriptions.py, which prints
what refusing it costs. Each case writes its files into a folder and returns the
path to hand to the loader (`--systems=PATH`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = REPO / "systems" / "ai-calendar-assistant.yml"

MINIMAL = "system: demo\nrunbook: runbook.md\nhosts: {server: 'local://'}\n"
# A backup check missing only its aspect; `{BACKUP}max_age_hours: 25}` is a whole one.
BACKUP = "{id: fresh, title: fresh backup, severity: P2, section: '4.', remedy: fix, directory: /b, "


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Callable[[Path], Path]
    says: str | tuple[str, ...]  # what the one message must contain (one of them, for a tuple)
    heavy: bool = False  # costs minutes or gigabytes if not refused: only run in a bounded subprocess

    def said_in(self, text: str) -> bool:
        return any(says in text for says in ((self.says,) if isinstance(self.says, str) else self.says))


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def billion_laughs() -> str:
    """Nine levels of nine aliases each: 10^9 values from 1 KB, under a field that is walked."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{','.join([f'*{previous}'] * 9)}]")
    return MINIMAL + "checks: {}\nfeatures:\n" + "".join(f"  {line}\n" for line in lines)


def _overlay(folder: Path, body: str) -> Path:
    write(folder, "production.yml", PRODUCTION.read_bytes())
    return write(folder, "overlay.yml", f"extends: production.yml\n{body}")


def _huge_file(folder: Path) -> Path:
    huge = folder / "huge.yml"
    with huge.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GiB of NUL bytes that take no disk
    return write(folder, "overlay.yml", f"extends: {huge.name}\n")


def _log_check(pattern_lines: str) -> str:
    return (
        MINIMAL + "checks:\n  logs:\n    - id: started\n      title: bot started\n      severity: P2\n"
        "      section: '1'\n      remedy: restart\n      container: bot\n      must_match: true\n"
        f"      pattern: |\n{pattern_lines}"
    )


CASES: tuple[Hostile, ...] = (
    Hostile(
        "invalid UTF-8",
        lambda d: write(d, "x.yml", MINIMAL.encode() + b"title: caf\xe9\n"),
        ":4:11: not UTF-8: byte 0xe9",
    ),
    Hostile(
        "400-digit number",
        lambda d: write(d, "x.yml", MINIMAL + f"checks:\n  backups: [{BACKUP}min_bytes: {'9' * 400}}}]\n"),
        ":5:114: number '99999999999999999999'... (400 characters) is out of range",
    ),
    Hostile(
        "5000-digit number",
        lambda d: write(d, "x.yml", MINIMAL + f"command_timeout: {'9' * 5000}\n"),
        "(5000 characters) is out of range",
    ),
    Hostile(
        "20,000-deep nesting",
        lambda d: write(d, "x.yml", MINIMAL + "checks: " + "[" * 20000 + "]" * 20000),
        # Our composer refuses level 51; libyaml 0.2.6 (in the PyYAML 6.0.4 wheel) scans a flow
        # collection ahead and refuses level 1001 first. Either is the one clear message wanted.
        (":4:58: nested more than 50 levels deep", ":4:1008: invalid YAML: exceeded maximum nesting depth"),
    ),
    Hostile(
        "self-referencing anchor",
        lambda d: write(d, "x.yml", MINIMAL + "checks: {}\nfeatures: &a [*a]\n"),
        ":5:15: alias *a is inside its own anchor",
    ),
    Hostile(
        "billion laughs",
        lambda d: write(d, "x.yml", billion_laughs()),
        ":11:6: stands for more than 100000 values once its aliases are expanded",
        heavy=True,
    ),
    Hostile(
        "overlay id is a list",
        lambda d: _overlay(d, "checks:\n  backups:\n    - {id: [backup-fresh], max_age_hours: 1}\n"),
        "overlay.yml: checks.backups[0]: needs an id (a string) to merge with the checks it extends",
    ),
    Hostile(
        "extends: /dev/zero",
        lambda d: write(d, "x.yml", "extends: /dev/zero\n"),
        "/dev/zero: cannot read: a device, not a file (named by extends: in ",
        heavy=True,
    ),
    Hostile(
        "extends: 2 GiB file",
        _huge_file,
        "huge.yml: larger than 1024 KiB, too large for a description (named by extends: in ",
        heavy=True,
    ),
    Hostile(
        "duplicate checks: key",
        lambda d: write(
            d, "x.yml", MINIMAL + f"checks:\n  backups: [{BACKUP}max_age_hours: 1}}]\nchecks: {{}}\n"
        ),
        ":6:1: key 'checks' is given twice in one mapping (first on line 4)",
    ),
    Hostile(
        "max_age_hours: .inf",
        lambda d: write(d, "x.yml", MINIMAL + f"checks:\n  backups: [{BACKUP}max_age_hours: .inf}}]\n"),
        ":5:118: '.inf' is not a finite number",
    ),
    Hostile(
        "max_age_hours: 'inf'",
        lambda d: write(d, "x.yml", MINIMAL + f"checks:\n  backups: [{BACKUP}max_age_hours: 'inf'}}]\n"),
        "checks.backups[0] (id fresh).max_age_hours: Input should be a finite number",
    ),
    Hostile(
        "logs.pattern of two lines",
        lambda d: write(d, "x.yml", _log_check("        started\n        stopped\n")),
        "checks.logs[0] (id started).pattern: one pattern per check",
    ),
)
