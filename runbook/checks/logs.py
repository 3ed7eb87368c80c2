"""Container log lines (runbook: `docker logs telegram-bot --since 24h | grep -i -E ...`).

grep runs on the host, so an error storm of a million lines costs a count and
the last few lines on the wire, not the whole log.
"""

from __future__ import annotations

from runbook.hosts import Target
from runbook.outcome import CheckError, CheckFailed
from runbook.schema import LogCheck, parse_duration
from runbook.units import human_seconds


def verify(check: LogCheck, target: Target) -> None:
    since = f"--since {int(parse_duration(check.since))}s " if check.since else ""
    window = f" in the last {human_seconds(parse_duration(check.since))}" if check.since else ""
    logs = f"docker logs -t {since}%s 2>&1"
    exists = target.docker_inspect(check.container)
    if exists is None:
        raise CheckFailed(f"logs of {check.container}", f"no container named {check.container}")
    if check.must_match:
        result = target.run(f"{logs} | grep -m 1 -i -E -e %s", check.container, check.pattern)
        if result.rc > 1:
            raise CheckError(f"reading logs of {check.container}: {result.stderr.strip()[:300]}")
        if not result.stdout.strip():
            raise CheckFailed(
                f"a line matching {check.pattern!r} in {check.container}'s logs{window}",
                f"no line of {check.container}'s logs{window} matches {check.pattern!r}",
            )
        return
    result = target.run(
        f"{logs} | grep -c -i -E -e %s; {logs} | grep -i -E -e %s | tail -n %s",
        check.container,
        check.pattern,
        check.container,
        check.pattern,
        str(check.show_lines),
    )
    first, _, rest = result.stdout.partition("\n")
    if not first.strip().isdigit():
        raise CheckError(f"reading logs of {check.container}: {result.stderr.strip()[:300]}")
    count = int(first)
    limit = check.max_matches or 0
    if count > limit:
        lines = rest.rstrip("\n")
        raise CheckFailed(
            f"at most {limit} lines matching {check.pattern!r}{window}",
            f"{count} lines of {check.container}'s logs match {check.pattern!r}{window} > {limit}",
            {f"last {check.show_lines} matching lines": lines} if lines else {},
        )
