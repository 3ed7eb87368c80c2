"""A unit's journal (Magic Master runbook § 2: `journalctl -u magic-master --since "1 hour ago"`,
looking for ERROR).

journalctl filters on the host (`--priority=` and/or `--grep=`, PCRE2 as journalctl has it)
and prints one JSON object per entry, so a message with newlines in it (a traceback sent in
one piece) is one line and counts once; one awk keeps the count and the last few entries,
so an error storm costs one pass and a few lines on the wire. Note that a service writing
to stdout gets one entry per line from journald, at its `SyslogLevel=` (info) unless the line
starts with `<3>`: for those, match the ERROR lines with a pattern rather than a priority,
and `case_sensitive: true` so that only the level counts, not every "error" in a message
(`--case-sensitive=true`; the default, caseless, is journalctl's for a lower-case pattern).
"""

from __future__ import annotations

import json
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import CheckBase, Duration, format_duration, regex
from runbook.errors import CheckError, CheckFailed
from runbook.host.systemd import UnitName
from runbook.host.target import Target

Priority = Literal["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
EXIT_MARK = "__journalctl_exit__"
# First line: journalctl's exit code and the number of entries; then the last n entries.
COUNT_AND_TAIL = (
    "awk -v n=%s '"
    f'$1 == "{EXIT_MARK}" {{ rc = $2; next }} '
    "{ c++; if (n > 0) last[c %% n] = $0 } "
    "END { print rc + 0, c + 0; s = c - n + 1; if (s < 1) s = 1; "
    "for (i = s; i <= c; i++) print last[i %% n] }'"
)
JOURNALCTL = (
    "journalctl --unit=%s --since=%s --no-pager --quiet --output=json "
    "--output-fields=MESSAGE,PRIORITY,__REALTIME_TIMESTAMP"
)


class JournaldCheck(CheckBase):
    """Entries of a unit's journal within a window, by priority and/or pattern, at most a threshold."""

    kind: ClassVar[str] = "journald"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "incident")

    unit: UnitName
    since: Duration = Field(default=3600.0, description="window: 1h, as --since '1 hour ago'")
    priority: Priority | None = Field(default=None, description="err: priorities 0-3 (emerg to err)")
    pattern: str | None = Field(
        default=None, min_length=1, description="PCRE2 on MESSAGE, case-insensitive unless case_sensitive"
    )
    case_sensitive: bool = Field(
        default=False,
        description="match `pattern` case-sensitively (a level named in capitals: ERROR, not every 'error')",
    )
    max_matches: int = Field(default=0, ge=0, le=1_000_000_000)
    show_lines: int = Field(default=20, ge=0, le=200)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\r" in value or "\0" in value):
            raise ValueError("one line: journalctl --grep takes one pattern (use a|b)")
        return regex(value) if value is not None else None

    @model_validator(mode="after")
    def _something_to_match(self) -> JournaldCheck:
        if self.priority is None and self.pattern is None:
            raise ValueError("set priority (e.g. err), pattern (e.g. ERROR), or both")
        if self.since < 1:
            raise ValueError("since: a window of 1s or more")
        if self.case_sensitive and self.pattern is None:
            raise ValueError("case_sensitive: applies to pattern, and no pattern is set")
        return self

    @property
    def what(self) -> str:
        parts = [
            f"priority <= {self.priority}" if self.priority else "",
            (f"/{self.pattern}/" if not self.case_sensitive else f"/{self.pattern}/ (case-sensitive)")
            if self.pattern
            else "",
        ]
        return " and ".join(part for part in parts if part)


def command(check: JournaldCheck) -> tuple[str, tuple[str, ...]]:
    """The shell template and its arguments (every value quoted by Target.run)."""
    filters, args = "", [check.unit, f"-{int(check.since)}s"]
    if check.priority:
        filters += " --priority=%s"
        args.append(check.priority)
    if check.pattern:
        filters += " --case-sensitive=%s --grep=%s"
        args += ["true" if check.case_sensitive else "false", check.pattern]
    template = f"{{ {JOURNALCTL}{filters}; echo {EXIT_MARK} $?; }} | {COUNT_AND_TAIL}"
    return template, (*args, str(check.show_lines))


def message(line: str) -> str:
    """An entry's MESSAGE (journald gives bytes that are not UTF-8 as a list of numbers)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    value = entry.get("MESSAGE", "") if isinstance(entry, dict) else ""
    if isinstance(value, list):
        return bytes(number for number in value if isinstance(number, int) and 0 <= number < 256).decode(
            "utf-8", errors="backslashreplace"
        )
    return str(value)


def parse(stdout: str) -> tuple[int, int, list[str]]:
    """journalctl's exit code, the number of entries, the last entries' messages."""
    lines = stdout.splitlines()
    if not lines or len(lines[0].split()) != 2:
        raise ValueError(f"unexpected output: {stdout[:200]!r}")
    rc, count = (int(word) for word in lines[0].split())
    return rc, count, [message(line) for line in lines[1:]]


def verify(check: JournaldCheck, target: Target) -> None:
    template, args = command(check)
    result = target.run(template, *args)
    try:
        rc, count, last = parse(result.stdout)
    except ValueError as exc:
        raise CheckError(f"journalctl -u {check.unit}: {exc}; {result.stderr.strip()[:300]}") from None
    # journalctl --grep exits 1 when nothing matched; anything else with nothing read is an error.
    if rc != 0 and count == 0 and (rc != 1 or not check.pattern or result.stderr.strip()):
        raise CheckError(f"journalctl -u {check.unit} exit {rc}: {result.stderr.strip()[:300]}")
    window = format_duration(check.since)
    if count > check.max_matches:
        raise CheckFailed(
            f"at most {check.max_matches} entries of {check.unit} with {check.what} in the last {window}",
            f"{count} entries of {check.unit} with {check.what} in the last {window} > {check.max_matches}",
            {f"last {len(last)} entries": "\n".join(last)},
        )
