"""Hostile hosts and odd input: bounded time and memory, read-only commands, right answers.

Each test is one class of issue 6 (hardening), on loopback and local:// only:
servers that trickle or never stop, commands that never stop or leave children,
binary output, values that would be options, symlinked and odd backup folders.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks.backups import BackupCheck
from runbook.checks.backups import verify as verify_backup
from runbook.checks.http import HttpCheck
from runbook.checks.http import verify as verify_http
from runbook.checks.logs import LogCheck
from runbook.errors import CheckError, CheckFailed, CommandTimeout, HostUnreachable
from runbook.host import http_client
from runbook.host.backups import listing
from runbook.host.processes import OUTPUT_CAP
from runbook.host.target import Target
from runbook.readers import rundir

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "1.", "remedy": "fix it"}


# -- servers that never finish ---------------------------------------------------------------


@pytest.fixture
def hostile_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback HTTP server whose behaviour the test picks: trickle headers, or an endless body."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    mode: dict[str, Any] = {"kind": "trickle", "stop": threading.Event()}

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            try:
                if mode["kind"] == "trickle":
                    connection.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not mode["stop"].is_set():
                        connection.sendall(b"X")  # one header byte a second, forever
                        time.sleep(0.5)
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
                    chunk = b"[" + b"1," * 32768
                    while not mode["stop"].is_set():
                        connection.sendall(chunk)
            except OSError:
                return

    def accept() -> None:
        while not mode["stop"].is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/health", mode
    mode["stop"].set()
    listener.close()


def http_check(url: str, **fields: Any) -> HttpCheck:
    return HttpCheck(**COMMON, id="health", url=url, **fields)


@pytest.mark.slow
def test_trickled_headers_hit_the_total_deadline(
    hostile_server: tuple[str, dict[str, Any]], local: Target
) -> None:
    url, _ = hostile_server
    started = time.monotonic()
    with pytest.raises(CheckFailed, match=r"no answer within 2s"):
        verify_http(http_check(url, timeout=2), local)
    assert time.monotonic() - started < 20  # a per-read timeout would never end


def test_an_endless_body_is_cut_and_said_so(
    hostile_server: tuple[str, dict[str, Any]], local: Target
) -> None:
    url, mode = hostile_server
    mode["kind"] = "endless"
    answer = http_client.fetch("GET", url, timeout=5)
    assert answer.status == 200
    assert answer.truncated and len(answer.body) <= http_client.BODY_CAP
    with pytest.raises(CheckFailed, match=r"body is not JSON: .*\(body cut at \d+ bytes\)"):
        verify_http(http_check(url, timeout=5, expect_json={"status": "ok"}), local)


def test_a_refused_connection_is_a_failure_with_its_reason(local: Target) -> None:
    with pytest.raises(CheckFailed, match="Connection refused"):
        verify_http(http_check("http://127.0.0.1:9/health", timeout=2), local)


# -- commands that never stop, print forever, or leave children --------------------------------


def test_endless_output_is_capped_and_said(local: Target) -> None:
    result = local.run("yes | head -c 50000000")
    assert result.ok
    assert result.dropped > 40_000_000
    assert len(result.stdout) < OUTPUT_CAP + 200
    assert "bytes of output not kept" in result.stdout


@pytest.mark.slow
def test_endless_command_ends_at_its_deadline(local: Target) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match="did not finish within 2s"):
        local.run("yes", timeout=2)
    assert time.monotonic() - started < 20  # `yes` never ends: the deadline did


def test_background_children_are_killed_and_said(local: Target) -> None:
    marker = "sleep 4321"
    result = local.run(f"{marker} & echo started")
    assert result.stdout == "started\n"
    assert "left processes running in the background; they were killed" in result.stderr
    time.sleep(0.2)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1
    assert result.duration < 2


def test_binary_output_is_shown_as_bytes(local: Target) -> None:
    assert local.run("printf '\\377\\376ok'").stdout == "\\xff\\xfeok"


def test_an_exception_without_args_is_classified(local: Target) -> None:
    assert isinstance(local._classify(RuntimeError()), HostUnreachable)


def test_a_runner_that_cannot_start_a_process_leaves_the_host_reachable(
    local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EAGAIN from fork is this machine's trouble: the check fails, the host is not written off."""

    def no_more_processes(*args: Any, **kwargs: Any) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", no_more_processes)
        with pytest.raises(CheckError, match=r"runner could not start .*Resource temporarily") as failed:
            local.run("true")
        assert not isinstance(failed.value, HostUnreachable)
    assert local.unreachable is None
    assert local.run("echo still").stdout == "still\n"


# -- values that would become options -----------------------------------------------------------


@pytest.mark.parametrize("directory", ["-delete", "./backups", "backups", "/ok\n-delete"])
def test_a_backup_directory_must_be_an_absolute_path(directory: str) -> None:
    with pytest.raises(ValidationError):
        BackupCheck(**COMMON, id="b", directory=directory, max_age_hours=25)


def test_hostile_patterns_stay_arguments(tmp_path: Path, local: Target) -> None:
    victim = tmp_path / "keep.tar.gz"
    victim.write_bytes(b"x")
    for pattern in ("-delete", "*' -delete -name '*", "$(rm -rf x)"):
        check = BackupCheck(**COMMON, id="b", directory=str(tmp_path), pattern=pattern, max_age_hours=25)
        with pytest.raises(CheckFailed, match="no backups found"):
            verify_backup(check, Target("local", "local://", command_timeout=10, connect_timeout=5))
    assert victim.exists()


@pytest.mark.parametrize("container", ["-it", "--privileged", "a b", "$(id)"])
def test_container_names_follow_dockers_rule(container: str) -> None:
    with pytest.raises(ValidationError):
        LogCheck(**COMMON, id="logs", container=container, pattern="error", max_matches=0)


# -- odd input, right answers ----------------------------------------------------------------------


def test_a_symlinked_backup_folder_is_followed(tmp_path: Path, local: Target) -> None:
    real = tmp_path / "real"
    real.mkdir()
    old = real / "20250101_030000.tar.gz"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    link = tmp_path / "backups"
    link.symlink_to(real)
    fresh = BackupCheck(**COMMON, id="fresh", directory=str(link), max_age_hours=25)
    with pytest.raises(CheckFailed, match=r"newest backup \d+\.\dh old > 25h"):
        verify_backup(fresh, local)
    retention = BackupCheck(**COMMON, id="keep", directory=str(link), retention_days=30)
    with pytest.raises(CheckFailed, match="1 backup\\(s\\) older than 31 days"):
        verify_backup(retention, local)


def test_a_file_name_with_a_newline_is_one_entry(tmp_path: Path, local: Target) -> None:
    (tmp_path / "a\nb.tar.gz").write_bytes(b"x" * 10)
    archives, _ = listing(BackupCheck(**COMMON, id="b", directory=str(tmp_path), min_bytes=1), local)
    assert [archive.path for archive in archives] == [f"{tmp_path}/a\nb.tar.gz"]


def test_a_block_scalar_pattern_loses_its_newline() -> None:
    check = LogCheck(**COMMON, id="logs", container="bot", pattern="error|exception\n", max_matches=0)
    assert check.pattern == "error|exception"
    with pytest.raises(ValidationError, match="one pattern per check"):
        LogCheck(**COMMON, id="logs", container="bot", pattern="error\n\nfatal", max_matches=0)
    with pytest.raises(ValidationError, match="pattern is empty"):
        LogCheck(**COMMON, id="logs", container="bot", pattern="\n", max_matches=0)


@pytest.mark.parametrize("hours", [math.inf, math.nan, -1, 10**9])
def test_absurd_thresholds_are_refused(hours: float) -> None:
    with pytest.raises(ValidationError):
        BackupCheck(**COMMON, id="b", directory="/b", max_age_hours=hours)


@pytest.mark.parametrize("window", [".inf", "1e400", "999999d", -5])
def test_absurd_windows_are_refused(window: Any) -> None:
    with pytest.raises(ValidationError):
        LogCheck(**COMMON, id="logs", container="bot", pattern="x", max_matches=0, since=window)


def test_latest_never_goes_back_in_time(tmp_path: Path) -> None:
    newer = tmp_path / "20261123T090000Z-daily"
    older = tmp_path / "20261123T080000Z-daily"
    newer.mkdir()
    older.mkdir()
    rundir.point_latest(newer)
    rundir.point_latest(older)  # the older, slower run finishes last
    assert os.readlink(tmp_path / "latest") == newer.name
    same_second = tmp_path / "20261123T090000Z-daily-2"
    same_second.mkdir()
    rundir.point_latest(same_second)
    assert os.readlink(tmp_path / "latest") == same_second.name
