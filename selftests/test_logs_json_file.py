"""The log check reads a json-file log itself: same counts and lines as through `docker logs -t`.

A stand-in `docker` on PATH answers `inspect` with the log driver and path (json-file, or
`local` to force the fallback) and `logs -t [--since Ns]` the way dockerd decodes the file
(each JSON line's `log` after its RFC 3339 time with 9 digits). The file has what JSON
escapes (quotes, backslashes, <>&, tabs), unicode, a multi-line entry and lines too old.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook.checks import logs
from runbook.errors import CheckError, CheckFailed
from runbook.host.target import Target

FAKE_DOCKER = """#!{python}
import json, os, sys
from datetime import datetime, timedelta, timezone
args = sys.argv[1:]
if args[0] == "inspect":
    print(os.environ["FAKE_LOG_DRIVER"] + "|" + os.environ["FAKE_LOG_PATH"])
    sys.exit(0)
since = None
if "--since" in args:
    value = args[args.index("--since") + 1]
    if value.endswith("s"):
        since = datetime.now(timezone.utc) - timedelta(seconds=int(value.rstrip("s")))
    else:  # an RFC 3339 time, as docker takes it (to the microsecond here)
        since = datetime.fromisoformat(value[:26].rstrip("Z")).replace(tzinfo=timezone.utc)
out = sys.stdout
for raw in open(os.environ["FAKE_LOG_PATH"], encoding="utf-8"):
    entry = json.loads(raw)
    stamp = entry["time"]
    whole, _, frac = stamp[:-1].partition(".")
    when = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    if since is not None and len(args[args.index("--since") + 1]) > 12:
        if when.replace(microsecond=int(frac.ljust(6, "0")[:6])) < since:
            continue
    elif since is not None and when < since.replace(microsecond=0):
        continue
    out.write(whole + "." + frac.ljust(9, "0") + "Z " + entry["log"])
"""

MESSAGES = [
    'ERROR "quoted" <tag> & amp\\n\n',
    "error\twith tab and backslash \\\\ end\n",
    "plain info line\n",
    "Traceback (most recent call last):\n  File x\nValueError: bad\n",
    "ünïcödé Error ✓\n",
    "database is locked\n",
]


def write_log(path: Path, partial: bool = False) -> None:
    now = datetime.now(UTC)
    lines: list[str] = []
    messages = [*MESSAGES, "a partial line, no newline: ERROR"] if partial else MESSAGES
    timeline = [(30, "ERROR too old\n"), (2, messages[0])] + [(1, m) for m in messages[1:]] * 50
    for age_hours, message in timeline:
        moment = now - timedelta(hours=age_hours, microseconds=len(lines) * 10)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"
        entry = {"log": message, "stream": "stderr", "time": stamp}
        lines.append(json.dumps(entry, separators=(",", ":"), ensure_ascii=False))  # as dockerd: UTF-8
    # dockerd's encoder escapes <, > and & as Go does
    text = "\n".join(lines) + "\n"
    path.write_text(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    binary = tmp_path / "bin" / "docker"
    binary.parent.mkdir()
    binary.write_text(FAKE_DOCKER.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "container-json.log"
    write_log(log)
    monkeypatch.setenv("PATH", f"{binary.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG_PATH", str(log))
    return log


def outcome(
    pattern: str,
    since: float | str | None,
    driver: str,
    monkeypatch: pytest.MonkeyPatch,
    started: str = "2026-01-02T03:00:00Z",
    must_match: bool = False,
) -> str:
    monkeypatch.setenv("FAKE_LOG_DRIVER", driver)
    check = logs.LogCheck(
        id="errors",
        title="few errors",
        severity="P2",
        section="1",
        remedy="look",
        container="bot",
        pattern=pattern,
        since=since,
        **({"must_match": True} if must_match else {"max_matches": 0}),
        show_lines=200,
    )
    target = Target("local", "local://", command_timeout=20, connect_timeout=5)
    # the container exists, started then
    target.cached(("docker-inspect", "bot"), lambda: {"Name": "/bot", "State": {"StartedAt": started}})
    try:
        logs._verify_one(check, target, logs.Container("bot"))
    except CheckFailed as failed:
        return failed.found + "\n" + "\n".join(failed.evidence.values())
    return "no match"


@pytest.mark.parametrize(
    "pattern",
    ["error", "error|traceback", "database is locked", '"quoted" <tag> &', "^[0-9-]+T.*Traceback", "\\\\"],
)
@pytest.mark.parametrize("since", [86400.0, None])
def test_json_file_and_docker_logs_agree(
    pattern: str, since: float | None, docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file = outcome(pattern, since, "json-file", monkeypatch)
    through_docker = outcome(pattern, since, "local", monkeypatch)
    assert from_file == through_docker
    assert from_file != "no match"


@pytest.mark.parametrize("since", [86400.0, None])
def test_partial_entries_run_on_as_in_docker_logs(
    since: float | None, docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_log(docker, partial=True)
    pattern = "error.*"  # not plain: the whole file is read, so entries can join
    assert outcome(pattern, since, "json-file", monkeypatch) == outcome(pattern, since, "local", monkeypatch)


def test_plain_patterns_are_the_ones_json_leaves_alone() -> None:
    assert logs.PLAIN_PATTERN.match("error|exception|traceback")
    assert logs.PLAIN_PATTERN.match("database is locked")
    for pattern in ['"quoted"', "a.b", "^ERROR", "x\\\\y", "<tag>"]:
        assert not logs.PLAIN_PATTERN.match(pattern)


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_since_start_counts_only_what_the_current_run_logged(
    driver: str, docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`since: start`: a line from before a restart proves nothing about the container now."""
    now = datetime.now(UTC)
    entries = [(3.0, "Start polling\n"), (2.0, "Polling stopped\n"), (1.0, "Starting app\n")]
    lines = []
    for age_hours, message in entries:
        stamp = (now - timedelta(hours=age_hours)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        entry = {"log": message, "stream": "stdout", "time": stamp}
        lines.append(json.dumps(entry, separators=(",", ":")))  # as dockerd writes it
    docker.write_text("\n".join(lines) + "\n")
    restarted = (now - timedelta(hours=1, seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "456Z"
    found = outcome("start polling", "start", driver, monkeypatch, started=restarted, must_match=True)
    assert found.startswith("no line of bot's logs since its start at ")
    assert "matches 'start polling'" in found
    first_start = (now - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    assert outcome("start polling", "start", driver, monkeypatch, started=first_start, must_match=True) == (
        "no match"
    )
    # counted from the start on, the same lines through the file and through docker logs
    assert outcome("polling", "start", driver, monkeypatch, started=first_start).startswith(
        "2 lines of bot's logs match 'polling' since its start at "
    )
    assert outcome("polling", "start", driver, monkeypatch, started=restarted) == "no match"


def test_since_start_needs_a_start_time(docker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckError, match="no start time in docker inspect"):
        outcome("polling", "start", "json-file", monkeypatch, started="0001-01-01T00:00:00Z")


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_since_start_counts_a_line_logged_a_moment_before_docker_recorded_the_start(
    driver: str, docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container that fails at once (xray's `User <name> already exists`, hexenvpn l.23) logs its
    error before docker sets State.StartedAt (0.3 ms in the lab): that line is the current run's."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    entries = [
        (start - timedelta(seconds=2), "User old already exists\n"),  # the run before: not counted
        (start - timedelta(microseconds=300), "User Test1 already exists\n"),
    ]
    lines = [
        json.dumps(
            {"log": message, "stream": "stdout", "time": when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"},
            separators=(",", ":"),  # as dockerd writes it
        )
        for when, message in entries
    ]
    docker.write_text("\n".join(lines) + "\n")
    started = start.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    found = outcome("User .+ already exists", "start", driver, monkeypatch, started=started)
    assert found.startswith("1 line of bot's logs match 'User .+ already exists' since its start at "), found
    assert "User Test1 already exists" in found and "User old" not in found
    later = (start + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    assert outcome("User .+ already exists", "start", driver, monkeypatch, started=later) == "no match"
