"""Container log lines (runbook: `docker logs telegram-bot --since 24h | grep -i -E ...`).

grep runs on the host, and one awk after it keeps the count and the last few
matching lines, so an error storm of a million lines costs one pass over the
log and a few lines on the wire, not the whole log.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from runbook import docker_host
from runbook.docker_host import Container
from runbook.hosts import Target
from runbook.model import CheckBase, ContainerName, Duration, InContainer, format_duration, regex
from runbook.outcome import CheckError, CheckFailed

# Prints the number of lines it read, then the last n of them (n may be 0).
COUNT_AND_TAIL = (
    "awk -v n=%s '{ c++; if (n > 0) last[c %% n] = $0 } "
    "END { print c + 0; s = c - n + 1; if (s < 1) s = 1; for (i = s; i <= c; i++) print last[i %% n] }'"
)


class LogCheck(CheckBase, InContainer):
    """Lines of a container's log (each of a compose service's): a pattern rare, or present."""

    kind: ClassVar[str] = "logs"
    aspects: ClassVar[tuple[str, ...]] = ("max_matches", "must_match")
    container_required: ClassVar[bool] = True

    container: ContainerName | None = None
    pattern: str = Field(min_length=1, description="extended regex, matched case-insensitively")
    since: Duration | None = 86400.0
    max_matches: int | None = Field(default=None, ge=0, le=1_000_000_000)
    must_match: bool | None = None
    show_lines: int = Field(default=20, ge=0, le=200)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        # A YAML block scalar ends in a newline; grep reads each line as a pattern of its own
        # and the empty one matches everything, so trailing newlines go and inner ones are refused.
        value = value.rstrip("\r\n")
        if not value:
            raise ValueError("the pattern is empty")
        if "\n" in value or "\r" in value:
            raise ValueError("one pattern per check: grep would read each line as a pattern (use a|b)")
        return regex(value)


def verify(check: LogCheck, target: Target) -> None:
    assert check.container_ref is not None  # container_required
    for container in docker_host.containers(target, check.container_ref):
        _verify_one(check, target, container)


def _verify_one(check: LogCheck, target: Target, container: Container) -> None:
    window = f" in the last {format_duration(check.since)}" if check.since else ""
    logs = docker_host.logs_template(check.since)
    if docker_host.inspect(target, container) is None:
        raise CheckFailed(f"logs of {container}", f"no container named {container.name}")
    if check.must_match:
        result = target.run(f"{logs} | grep -m 1 -i -E -e %s", container.name, check.pattern)
        if result.rc > 1:
            raise CheckError(f"reading logs of {container}: {result.stderr.strip()[:300]}")
        if not result.stdout.strip():
            raise CheckFailed(
                f"a line matching {check.pattern!r} in {container}'s logs{window}",
                f"no line of {container}'s logs{window} matches {check.pattern!r}",
            )
        return
    result = target.run(
        f"{logs} | grep -i -E -e %s | {COUNT_AND_TAIL}",
        container.name,
        check.pattern,
        str(check.show_lines),
    )
    first, _, rest = result.stdout.partition("\n")
    if not first.strip().isdigit():
        raise CheckError(f"reading logs of {container}: {result.stderr.strip()[:300]}")
    count = int(first)
    limit = check.max_matches or 0
    if count > limit:
        lines = rest.rstrip("\n")
        raise CheckFailed(
            f"at most {limit} lines matching {check.pattern!r}{window}",
            f"{count} lines of {container}'s logs match {check.pattern!r}{window} > {limit}",
            {f"last {check.show_lines} matching lines": lines} if lines else {},
        )
