"""`logs` with `path:`: log files on a local:// host, rotated, gzipped, timestamped or not.

Each case is a real file in tmp_path read by the real scan (find, gzip, grep, awk on
this machine): green when the errors are outside the window or absent, red with the
count, the last lines and the untimed note when they are in it.
"""

from __future__ import annotations

import gzip
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks import logs
from runbook.checks.logs import LogCheck
from runbook.errors import CheckFailed
from runbook.host.target import Target

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "4.", "remedy": "fix it"}
NOW = datetime.now(UTC)


def target() -> Target:
    return Target("local", "local://", command_timeout=20, connect_timeout=5)


def check(**fields: Any) -> LogCheck:
    return LogCheck(**{**COMMON, "id": "app-errors", "pattern": "error", "since": "1h", **fields})


def iso(ago: float) -> str:
    return (NOW - timedelta(seconds=ago)).strftime("%Y-%m-%d %H:%M:%S")


def nginx(ago: float) -> str:
    return (NOW - timedelta(seconds=ago)).strftime("[%d/%b/%Y:%H:%M:%S +0000]")


def syslog(ago: float) -> str:
    local = datetime.fromtimestamp(time.time() - ago)
    return f"{local:%b} {local.day:2d} {local:%H:%M:%S}"


def write(path: Path, lines: list[str], *, age: float = 0.0) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def verdict(found: LogCheck) -> CheckFailed | None:
    try:
        logs.verify(found, target())
    except CheckFailed as failed:
        return failed
    return None


def rotated_app(tmp_path: Path, *, recent_errors: bool) -> Path:
    """app.log now, app.log.1 from 3 h ago, app.log.2.gz from yesterday (errors in each)."""
    write(tmp_path / "app.log.2.gz", [f"{iso(86400)} ERROR gz yesterday"], age=86000)
    write(tmp_path / "app.log.1", [f"{iso(3 * 3600)} ERROR redis.exceptions.ConnectionError"], age=3 * 3600)
    current = [f"{iso(600)} INFO started", f"{iso(300)} INFO healthy"]
    if recent_errors:
        current += [f"{iso(120)} ERROR Connection refused", f"{iso(60)} ERROR YandexGPT API error 500"]
    return write(tmp_path / "app.log", current)


def test_errors_only_before_the_window_pass(tmp_path: Path) -> None:
    app = rotated_app(tmp_path, recent_errors=False)
    assert verdict(check(path=str(app), max_matches=0)) is None


def test_errors_in_the_window_fail_with_count_and_last_lines(tmp_path: Path) -> None:
    app = rotated_app(tmp_path, recent_errors=True)
    failed = verdict(check(path=str(app), max_matches=1, show_lines=5))
    assert failed is not None
    assert failed.found == f"2 lines of {app} match 'error' in the last 1h > 1"
    last = failed.evidence["last 5 matching lines"].splitlines()
    assert last[-1].endswith("YandexGPT API error 500")
    assert "ConnectionError" not in failed.evidence["last 5 matching lines"]  # app.log.1: 3 h old


def test_rotated_and_gzipped_files_are_read_oldest_first(tmp_path: Path) -> None:
    app = rotated_app(tmp_path, recent_errors=True)
    failed = verdict(check(path=str(app), max_matches=0, since="2d", show_lines=10))
    assert failed is not None
    assert failed.found.startswith("4 lines of ")
    lines = failed.evidence["last 10 matching lines"].splitlines()
    assert [line.split(" ERROR ")[1] for line in lines] == [
        "gz yesterday",
        "redis.exceptions.ConnectionError",
        "Connection refused",
        "YandexGPT API error 500",
    ]
    assert str(tmp_path / "app.log.2.gz") in failed.evidence["files read"]


def test_a_pattern_of_its_own(tmp_path: Path) -> None:
    app = rotated_app(tmp_path, recent_errors=True)
    assert verdict(check(path=str(app), pattern=r"redis\.exceptions\.ConnectionError", max_matches=0)) is None
    failed = verdict(check(path=str(app), pattern="Connection refused", max_matches=0))
    assert failed is not None and failed.found.startswith("1 line of")


def test_nginx_and_syslog_timestamps(tmp_path: Path) -> None:
    access = write(
        tmp_path / "access.log",
        [
            f'1.2.3.4 - - {nginx(7200)} "GET / HTTP/1.1" 502 0',
            f'1.2.3.4 - - {nginx(30)} "GET / HTTP/1.1" 502 0',
        ],
    )
    failed = verdict(check(path=str(access), pattern='" 502 ', max_matches=0))
    assert failed is not None and failed.found.startswith("1 line of")
    messages = write(
        tmp_path / "syslog",
        [f"{syslog(7200)} host app[1]: error old", f"{syslog(30)} host app[1]: error new"],
    )
    failed = verdict(check(path=str(messages), max_matches=0))
    assert failed is not None and failed.found.startswith("1 line of")
    assert failed.evidence["last 20 matching lines"].endswith("error new")


def test_a_line_without_timestamp_counts_and_is_said(tmp_path: Path) -> None:
    app = write(tmp_path / "app.log", [f"{iso(7200)} ERROR old", "Traceback: error without a time"])
    failed = verdict(check(path=str(app), max_matches=0))
    assert failed is not None
    assert failed.found.endswith("in the last 1h (1 without a timestamp) > 0")
    assert "counted as in the window" in failed.evidence["without a timestamp"]


def test_must_match_both_ways(tmp_path: Path) -> None:
    app = rotated_app(tmp_path, recent_errors=False)
    assert verdict(check(path=str(app), pattern="healthy", must_match=True)) is None
    failed = verdict(check(path=str(app), pattern="ConnectionError", must_match=True))
    assert failed is not None
    assert failed.found == f"no line of {app} in the last 1h matches 'ConnectionError'"


def test_a_glob(tmp_path: Path) -> None:
    write(tmp_path / "worker-1.log", [f"{iso(60)} ERROR one"])
    write(tmp_path / "worker-2.log", [f"{iso(60)} INFO fine"])
    write(tmp_path / "other.txt", [f"{iso(60)} ERROR not a log"])
    failed = verdict(check(path=str(tmp_path / "worker-*.log"), max_matches=0))
    assert failed is not None and failed.found.startswith(f"1 line of {tmp_path}/worker-*.log")
    assert verdict(check(path=str(tmp_path / "worker-*.log"), max_matches=1)) is None


def test_a_missing_file_is_red(tmp_path: Path) -> None:
    failed = verdict(check(path=str(tmp_path / "absent.log"), max_matches=0))
    assert failed is not None and failed.found.startswith(f"no file {tmp_path}/absent.log on ")


def test_files_older_than_the_window_are_not_read(tmp_path: Path) -> None:
    write(tmp_path / "app.log", [f"{iso(7200)} ERROR old", "no time error"], age=7200)
    assert verdict(check(path=str(tmp_path / "app.log"), max_matches=0)) is None


def test_hostile_names_and_patterns_stay_data(tmp_path: Path) -> None:
    odd = write(tmp_path / "-e $(touch pwned) ;.log", [f"{iso(10)} ERROR -- `x`"])
    failed = verdict(check(path=str(odd), pattern="-- `x`", max_matches=0))
    assert failed is not None and failed.found.startswith("1 line of")
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"path": "/var/log/app.log", "container": "web"}, "found: container, path"),
        ({}, "found: none"),
        ({"path": "var/log/app.log"}, "should match pattern"),
        ({"path": "/var/*/app.log"}, "wildcards only in the file name"),
    ],
)
def test_exactly_one_source(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("*", r"\*")):
        LogCheck(**{**COMMON, "id": "x", "pattern": "error", "max_matches": 0, **fields})
