"""A run ends with every report written: at its deadline, and when it is told to stop (SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLOW = """\
system: slow
runbook: runbook.md
hosts: {local: "local://"}
checks:
  commands:
"""
CHECK = "    - {{id: step-{n}, title: step {n}, run: 'sleep 2', severity: P3, section: '1.', remedy: fix}}\n"


def describe(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "slow.yml"
    path.write_text(SLOW + "".join(CHECK.format(n=n) for n in range(count)), encoding="utf-8")
    return path


def command(tmp_path: Path, *extra: str) -> list[str]:
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={describe(tmp_path, 6)}"]
    return [*base, f"--reports-dir={tmp_path / 'reports'}", "-q", "--parallel-hosts=0", *extra]


def environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "RUNBOOK_"))}


def summary(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "reports" / "latest" / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_checks_not_started_by_the_run_deadline_are_reported_as_not_run(tmp_path: Path) -> None:
    done = subprocess.run(
        command(tmp_path, "--run-deadline=3s"),
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    checks = {check["check_id"]: check for check in summary(tmp_path)["checks"]}  # type: ignore[union-attr]
    not_run = [check for check in checks.values() if check["outcome"] == "skipped"]
    assert not_run, checks
    assert all("the run's deadline (--run-deadline=3s) passed" in check["message"] for check in not_run)
    assert checks["step-0"]["outcome"] == "passed"
    assert (tmp_path / "reports" / "latest" / "report.html").is_file()


@pytest.mark.slow
def test_sigterm_ends_the_run_with_its_reports_saying_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        command(tmp_path), cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    # Once the run is under way (its first check has written its record), however slow the start.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list((tmp_path / "reports").glob("*/.")):
        time.sleep(0.2)
    time.sleep(3)  # into the 2 s checks
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 2, output[-2000:]
    run = summary(tmp_path)["run"]
    assert run["interrupted"] is True and run["exit_status"] == 2  # type: ignore[index]
    assert (tmp_path / "reports" / "latest" / "report.html").is_file()
    assert (tmp_path / "reports" / "latest" / "junit.xml").is_file()


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(tmp_path), *extra], cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=180
    )


@pytest.mark.slow
def test_a_history_locked_at_the_start_does_not_stop_the_checks(tmp_path: Path) -> None:
    """Another process holding history.sqlite locked (a stuck sqlite3 shell, a run writing) is
    not a runner set up wrong: the checks run, and the row is written once the lock is free."""
    import sqlite3

    history = tmp_path / "reports" / "history.sqlite"
    assert _run(tmp_path, "-k", "step-0").returncode == 0  # the file exists, as on a runner
    holder = sqlite3.connect(history, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    process = subprocess.Popen(
        [*command(tmp_path), "-k", "step-0 or step-1"],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the lock is let go once the run has said it met it
            said.append(line)
            if "database is locked" in line:
                break
    finally:
        holder.execute("COMMIT")
        holder.close()
    stdout, rest = process.communicate(timeout=180)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(said) + rest)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "database is locked; the checks run, the history row is tried at the end" in done.stderr
    outcomes = {check["check_id"]: check["outcome"] for check in summary(tmp_path)["checks"]}  # type: ignore[union-attr]
    assert outcomes == {"step-0": "passed", "step-1": "passed"}
    with sqlite3.connect(history) as store:
        assert store.execute("SELECT COUNT(*) FROM runbook_runs").fetchone() == (2,)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_reports_disk_that_fills_up_mid_run_ends_the_run_cleanly(tmp_path: Path) -> None:
    """The disk holding the reports fills up while the checks run: the run still ends, with its
    exit code, and says what could not be written instead of a traceback."""
    reports = tmp_path / "reports"
    reports.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(reports)], check=True)
    try:
        process = subprocess.Popen(
            [*command(tmp_path), "-k", "step-0 or step-1 or step-2"],
            cwd=ROOT,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not [
            path for path in reports.iterdir() if path.is_dir() and not path.name.startswith(".")
        ]:
            time.sleep(0.1)
        filler = os.open(reports / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # every byte the tmpfs has left
            while os.write(filler, b"x" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(filler)
        output = process.communicate(timeout=120)[0].decode()
    finally:
        subprocess.run(["umount", "-l", str(reports)], check=False)
    assert process.returncode in (0, 1), output[-3000:]
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-3000:]
    assert "No space left on device" in output or "disk is full" in output, output[-3000:]
