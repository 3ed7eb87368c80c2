"""Container log lines (runbook: `docker logs telegram-bot --since 24h | grep -i -E ...`).

With `path:` instead of a container, the lines are a log file's on the host (a glob, or a
file with its rotated siblings), read there by runbook.host.log_files.

grep runs on the host, and one awk after it keeps the count and the last few
matching lines, so an error storm of a million lines costs one pass over the
log and a few lines on the wire, not the whole log.

`docker logs` decodes every JSON line of a json-file log before grep sees it, many times
slower than grep on the file (bench/RESULTS.md). So when the container logs to a
json-file the host can read (one file, not rotated), the same lines are made from the file
itself (`time log`, as `docker logs -t`, `--since` to the second) and grep runs on them;
a pattern of plain characters first selects the candidate lines on the raw file, which
is what keeps a 1 GB log at grep's speed. Anything else goes through `docker logs`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import (
    CheckBase,
    ContainerName,
    Duration,
    HostPath,
    InContainer,
    format_duration,
    regex,
)
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host, log_files
from runbook.host.docker_host import Container
from runbook.host.target import Target

# Prints the number of lines it read, then the last n of them (n may be 0).
COUNT_AND_TAIL = (
    "awk -v n=%s '{ c++; if (n > 0) last[c %% n] = $0 } "
    "END { print c + 0; s = c - n + 1; if (s < 1) s = 1; for (i = s; i <= c; i++) print last[i %% n] }'"
)


# Patterns made of these match the same text in a json-file line as in the decoded log
# (none of them is escaped by JSON), so grep on the raw file keeps every candidate line.
PLAIN_PATTERN = re.compile(r"^[A-Za-z0-9 _|()*+?:,=-]+$")
# The log field is `{"log":"...` up to `","stream":"`, the time field is the last one. Each
# entry is printed as `docker logs -t` does: time with 9 digits, the log without its final
# newline, and an entry without one (a partial line) runs on into the next; not so when only
# candidate lines are read (the next entry is unknown there): then it is a line of its own.
JSON_LINES_PROGRAM = r"""{
  i = index($0, "\",\"stream\":\""); t = $0
  sub(/.*"time":"/, "", t); sub(/".*/, "", t)
  if (i < 9) next
  d = index(t, ".")
  if (d) { f = substr(t, d + 1, length(t) - d - 1); t = substr(t, 1, d - 1) }
  else { f = ""; t = substr(t, 1, length(t) - 1) }
  while (length(f) < 9) f = f "0"
  if ((t "." f) < since) next
  l = substr($0, 9, i - 9); n = length(l); b = 0
  if (substr(l, n, 1) == "n") while (n - 1 - b > 0 && substr(l, n - 1 - b, 1) == "\\") b++
  if (b % 2) print t "." f "Z " substr(l, 1, n - 2)
  else if (join) printf "%s.%sZ %s", t, f, l
  else print t "." f "Z " l
}"""
JSON_LINES = f'awk -v since="$since" -v join="$join" \'{JSON_LINES_PROGRAM}\''
# JSON's escapes back to the text docker logs prints (\\ parked on \x01 meanwhile).
UNESCAPE = (
    "sed -e 's/\\\\\\\\/\\x01/g' -e 's/\\\\n/\\n/g' -e 's/\\\\t/\\t/g' "
    "-e 's/\\\\r/\\r/g' -e 's/\\\\\"/\"/g' -e 's/\\\\\\//\\//g' -e 's/\\\\u003c/</g' "
    "-e 's/\\\\u003e/>/g' -e 's/\\\\u0026/\\&/g' -e 's/\\x01/\\\\/g'"
)


def json_file_or_docker_logs(since_seconds: float | None, plain: bool, started: str | None = None) -> str:
    """A shell template printing `time log` lines (%s = container name), from the file if it can.

    `started`: only lines from this RFC 3339 time on (the container's start), instead of a window.
    """
    # No window: an empty cutoff, below every time.
    cutoff = f'$(date -u -d "@$(( $(date +%%s) - {int(since_seconds or 0)} ))" +%%Y-%%m-%%dT%%H:%%M:%%S)'
    if started is not None:
        cutoff = _nine_digits(started)
    elif not since_seconds:
        cutoff = ""
    candidates = 'grep -i -E -e "$pattern" -- "$path"' if plain else 'cat -- "$path"'
    join = "" if plain else "1"
    through_docker = docker_host.logs_template(since_seconds)
    if started is not None:
        through_docker = f"docker logs -t --since {started} -- %s 2>&1"
    return (
        "name=%s; pattern=%s; info=$(docker inspect --type container "
        "--format '{{.HostConfig.LogConfig.Type}}|{{.LogPath}}' -- \"$name\" 2>/dev/null); "
        "path=${info#json-file|}; "
        'if [ "$info" != "$path" ] && [ -r "$path" ] && ! ls -- "$path".* >/dev/null 2>&1; then '
        f"since={cutoff}; join={join}; "
        f"{{ {candidates} || true; }} | {JSON_LINES.replace('%', '%%')} | {UNESCAPE}; "
        f"else {through_docker.replace('%s', chr(34) + '$name' + chr(34))}; fi"
    )


# docker's State.StartedAt: RFC 3339 in UTC, up to nanoseconds.
STARTED_AT = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def started_at(info: dict[str, Any], container: Container) -> str:
    """The container's current start, as docker inspect's State.StartedAt says it."""
    started = str(info.get("State", {}).get("StartedAt") or "")
    if not STARTED_AT.match(started) or started.startswith("0001-"):
        raise CheckError(f"{container}: no start time in docker inspect (State.StartedAt {started!r})")
    return started


# A process's first lines can reach docker's log before docker records its start (State.StartedAt
# is set once the process runs): a container that fails at once (xray's `User <name> already
# exists` in a restart loop) logged its error 0.3 ms before its StartedAt in the lab. The current
# run's lines are counted from START_SLACK before it. The previous run ended earlier still: docker
# waits 100 ms at the least before it restarts a crashed container, and a start sets up its
# namespaces first; only a process's last words in the 0.1 s before an immediate restart count.
START_SLACK = timedelta(milliseconds=100)


def run_began(started: str) -> str:
    """State.StartedAt less START_SLACK, in RFC 3339 with nanoseconds (as `docker logs --since`)."""
    whole, _, fraction = _nine_digits(started).partition(".")
    nanos = int(fraction) - START_SLACK // timedelta(microseconds=1) * 1000
    second = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S") + timedelta(seconds=nanos // 1_000_000_000)
    return f"{second:%Y-%m-%dT%H:%M:%S}.{nanos % 1_000_000_000:09d}Z"


def _nine_digits(started: str) -> str:
    """'2026-01-02T03:00:00.5Z' as the file's lines are compared: '2026-01-02T03:00:00.500000000'."""
    match = STARTED_AT.match(started)
    assert match is not None  # checked by started_at()
    return f"{match.group(1)}.{(match.group(2) or '').ljust(9, '0')}"


class LogCheck(CheckBase, InContainer):
    """Lines of a container's log (each of a compose service's) or of log files on the host."""

    kind: ClassVar[str] = "logs"
    aspects: ClassVar[tuple[str, ...]] = ("max_matches", "must_match")

    container: ContainerName | None = None
    path: HostPath | None = Field(
        default=None,
        description="a log file on the host, with its rotated siblings (app.log.1, app.log.2.gz), "
        "or a glob (/var/log/app/*.log): instead of container/service",
    )
    pattern: str = Field(min_length=1, description="extended regex, matched case-insensitively")
    since: Literal["start"] | Duration | None = Field(
        default=86400.0,
        union_mode="left_to_right",
        description="a window such as 24h, null for the whole log, or `start`: since the container's "
        "current start (State.StartedAt, less 0.1 s: what a process that fails at once logs "
        "before docker records its start), so a line logged before a restart does not count",
    )
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

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and log_files.has_wildcards(value.rsplit("/", 1)[0]):
            raise ValueError("wildcards only in the file name: /var/log/app/*.log")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> LogCheck:
        named = [name for name in ("container", "service", "path") if getattr(self, name)]
        if len(named) != 1:
            raise ValueError(
                "set exactly one source: container (a container name), service (a compose service) "
                f"or path (a log file on the host); found: {', '.join(named) or 'none'}"
            )
        return self


def verify(check: LogCheck, target: Target) -> None:
    if check.path is not None:
        _verify_files(check, target, check.path)
        return
    assert check.container_ref is not None  # _one_source
    for container in docker_host.containers(target, check.container_ref):
        _verify_one(check, target, container)


def _verify_one(check: LogCheck, target: Target, container: Container) -> None:
    info = docker_host.inspect(target, container)
    if info is None:
        raise CheckFailed(f"logs of {container}", f"no container named {container.name}")
    plain = bool(PLAIN_PATTERN.match(check.pattern))
    if check.since == "start":
        started = started_at(info, container)
        window = f" since its start at {started[:19].replace('T', ' ')} UTC"
        logs = f"( {json_file_or_docker_logs(None, plain, run_began(started))} )"  # %s: name, pattern
    else:
        window = f" in the last {format_duration(check.since)}" if check.since else ""
        logs = f"( {json_file_or_docker_logs(check.since, plain)} )"  # %s: name, pattern
    if check.must_match:
        result = target.run(f"{logs} | grep -m 1 -i -E -e %s", container.name, check.pattern, check.pattern)
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
            f"{_lines(count)} of {container}'s logs match {check.pattern!r}{window} > {limit}",
            {f"last {check.show_lines} matching lines": lines} if lines else {},
        )


def _verify_files(check: LogCheck, target: Target, path: str) -> None:
    window = f" in the last {format_duration(check.since)}" if check.since else ""
    listing = log_files.files(target, path, check.since)
    if listing.unreadable:
        raise CheckError(f"cannot read {', '.join(listing.unreadable[:5])} on {target.display} (permissions)")
    if not listing.files:
        if not listing.older:
            raise CheckFailed(f"log file {path}", f"no file {path} on {target.display}")
        if check.must_match:
            raise CheckFailed(
                f"a line matching {check.pattern!r} in {path}{window}",
                f"no file {path} written{window} ({listing.older} last written before it)",
            )
        return
    scan = log_files.scan(target, listing.files, check.pattern, check.since, check.show_lines)
    read = ", ".join(log.path for log in listing.files[-5:])
    evidence = {
        "files read": read + (f" (and {len(listing.files) - 5} more)" if len(listing.files) > 5 else "")
    }
    if scan.untimed:
        evidence["without a timestamp"] = (
            f"{scan.untimed} matching lines have no timestamp the suite reads: counted as in the window"
        )
    if check.must_match:
        if not scan.count:
            raise CheckFailed(
                f"a line matching {check.pattern!r} in {path}{window}",
                f"no line of {path}{window} matches {check.pattern!r}",
                evidence,
            )
        return
    limit = check.max_matches or 0
    if scan.count > limit:
        if scan.last:
            evidence[f"last {check.show_lines} matching lines"] = scan.last
        untimed = f" ({scan.untimed} without a timestamp)" if scan.untimed else ""
        raise CheckFailed(
            f"at most {limit} lines matching {check.pattern!r}{window}",
            f"{_lines(scan.count)} of {path} match {check.pattern!r}{window}{untimed} > {limit}",
            evidence,
        )


def _lines(count: int) -> str:
    """'1 line', '3 lines'."""
    return f"{count} line" if count == 1 else f"{count} lines"
