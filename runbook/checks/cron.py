"""A crontab entry (runbook: `crontab -l | grep backup`, expected at `0 3 * * *`)."""

from __future__ import annotations

from typing import ClassVar

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


def verify(check: CronCheck, target: Target) -> None:
    result = target.run("crontab -l -u %s", check.user) if check.user else target.run("crontab -l")
    owner = check.user or "the login user"
    when = check.schedule or "(any schedule)"
    expected = f"a crontab entry `{when} ...{check.command_contains}...` for {owner}"
    if result.rc != 0:
        said = result.stderr.strip()[:200] or f"exit {result.rc}"
        raise CheckFailed(expected, f"no crontab for {owner} ({said})")
    all_entries = entries(result.stdout)
    matching = [entry for entry in all_entries if check.command_contains in entry[1]]
    evidence = {"crontab -l": result.stdout[-4000:]}
    if not matching:
        raise CheckFailed(
            expected,
            f"crontab has {len(all_entries)} entries, none runs {check.command_contains}",
            evidence,
        )
    schedules = [schedule for schedule, _ in matching]
    if check.schedule is not None and check.schedule not in schedules:
        raise CheckFailed(
            expected,
            f"{check.command_contains} scheduled {', '.join(repr(s) for s in schedules)} "
            f"!= {check.schedule!r}",
            evidence,
        )
