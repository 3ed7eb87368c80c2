"""A run ends with every report written: at its deadline, and when it is told to stop (SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
