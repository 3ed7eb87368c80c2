"""A cron entry (runbook: `crontab -l | grep backup`, expected at `0 3 * * *`).

"по cron" in a runbook means any of cron's tables: the user's crontab, /etc/crontab (the
calendar runbook itself appends its memory alert there) or a file in /etc/cron.d. Only a
runbook that checks with `crontab -l` limits the search to the user's crontab (`crontabs: user`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from runbook.describe.model import CheckBase
from runbook.errors import CheckFailed
from runbook.host.target import Target


class CronCheck(CheckBase):
    """A crontab entry: schedule and command (`crontab -l`)."""

    kind: ClassVar[str] = "cron"
    group: ClassVar[str] = "backup"
    default_markers: ClassVar[tuple[str, ...]] = ("daily",)

    schedule: str | None = Field(
        default=None,
        pattern=r"^(@\w+|(\S+\s+){4}\S+)$",
        description="the time the runbook fixes; unset: any schedule that runs the command passes",
    )
    command_contains: str = Field(min_length=1)
    user: str | None = Field(
        default=None, pattern=r"^[a-z_][a-z0-9_.-]*$", description="crontab -u USER; default the SSH user"
    )
    crontabs: Literal["all", "user"] = Field(
        default="all",
        description="all: the user's crontab, /etc/crontab and /etc/cron.d/* (whose user column must "
        "be `user` when set); user: only `crontab -l`, for a runbook that checks it that way",
    )


# cron's system tables: a file, then a folder whose files each are one (a constant, never a value).
SYSTEM_CRONTABS = ("/etc/crontab", "/etc/cron.d")
# Each system table's text follows a line of this byte and its path; 256 KiB of each at most.
TABLE_MARK = "\x1e"
READ_SYSTEM_TABLES = (
    'for f in %s %s/*; do [ -f "$f" ] && [ -r "$f" ] && '
    '{ printf \'\\036%%s\\n\' "$f"; head -c 262144 "$f"; echo; }; done; true'
)


def entries(text: str) -> list[tuple[str, str]]:
    """(schedule, command) of each active line; comments and VAR=value lines skipped."""
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            found.append((fields[0], " ".join(fields[1:])))
        elif len(fields) >= 6 and "=" not in fields[0]:
            found.append((" ".join(fields[:5]), " ".join(fields[5:])))
    return found


def system_entries(text: str, user: str | None) -> list[tuple[str, str]]:
    """(schedule, command) of a system table's lines, which name their user before the command."""
    found = []
    for schedule, rest in entries(text):
        owner, _, command = rest.partition(" ")
        if command and (user is None or owner == user):
            found.append((schedule, command))
    return found


def system_tables(text: str) -> dict[str, str]:
    """READ_SYSTEM_TABLES' output as {path: text}."""
    tables: dict[str, str] = {}
    for chunk in text.split(TABLE_MARK)[1:]:
        path, _, body = chunk.partition("\n")
        tables[path] = body
    return tables


def verify(check: CronCheck, target: Target) -> None:
    result = target.run("crontab -l -u %s", check.user) if check.user else target.run("crontab -l")
    owner = check.user or "the login user"
    when = check.schedule or "(any schedule)"
    user_only = check.crontabs == "user"
    where = f"for {owner}" if user_only else f"(crontab of {owner}, /etc/crontab or /etc/cron.d)"
    expected = f"a {'crontab' if user_only else 'cron'} entry `{when} ...{check.command_contains}...` {where}"
    said = result.stderr.strip()[:200] or f"exit {result.rc}"
    if result.rc != 0 and user_only:
        raise CheckFailed(expected, f"no crontab for {owner} ({said})")
    all_entries = entries(result.stdout) if result.rc == 0 else []
    evidence = {"crontab -l": result.stdout[-4000:] if result.rc == 0 else said}
    counts = [f"crontab has {len(all_entries)} entries" if result.rc == 0 else f"no crontab for {owner}"]
    if not user_only:
        tables = system_tables(target.run(READ_SYSTEM_TABLES, *SYSTEM_CRONTABS).stdout)
        for path, text in tables.items():
            listed = system_entries(text, check.user)
            all_entries += listed
            counts.append(f"{path} {len(listed)}")
            if any(check.command_contains in command for _, command in listed):
                evidence[path] = text[-4000:]
    matching = [entry for entry in all_entries if check.command_contains in entry[1]]
    if not matching:
        found = f"{counts[0]}, none runs {check.command_contains}"
        if not user_only:
            found = f"no cron entry runs {check.command_contains} ({'; '.join(counts)})"
        raise CheckFailed(expected, found, evidence)
    schedules = [schedule for schedule, _ in matching]
    if check.schedule is not None and check.schedule not in schedules:
        raise CheckFailed(
            expected,
            f"{check.command_contains} scheduled {', '.join(repr(s) for s in schedules)} "
            f"!= {check.schedule!r}",
            evidence,
        )
