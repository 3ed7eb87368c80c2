"""`--wait-ready`: a smoke gate started while the service restarts turns green once it answers.

The service is a /health server on a fixed loopback port that is down when the gate starts
and comes back a few seconds later (a restart after a deploy). Without --wait-ready the gate
fails at once; with it, the health check is retried until it answers and says when it did.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from selftests.data_servers import free_port
from selftests.readers_kit import SYSTEM, ReadersApp, serve_health

RESTART_SECONDS = 4.0


@pytest.fixture
def app(tmp_path: Path) -> ReadersApp:
    return ReadersApp(tmp_path, free_port()).write()


@pytest.fixture
def restarting(app: ReadersApp) -> Iterator[list[ThreadingHTTPServer]]:
    """The service comes back RESTART_SECONDS from now."""
    started: list[ThreadingHTTPServer] = []
    timer = threading.Timer(RESTART_SECONDS, lambda: started.append(serve_health(app.port)))
    timer.start()
    yield started
    timer.cancel()
    for server in started:
        server.shutdown()
        server.server_close()


def test_without_wait_ready_the_gate_fails_at_once(app: ReadersApp) -> None:
    began = time.monotonic()
    run = app.run(marker="smoke")
    assert run.returncode == 1
    assert run.outcomes()["health"] == "failed"
    assert time.monotonic() - began < 30
    assert "--wait-ready" not in run.output


def test_wait_ready_turns_a_restarted_service_green(
    app: ReadersApp, restarting: list[ThreadingHTTPServer]
) -> None:
    run = app.run("--wait-ready=60s", marker="smoke")
    assert run.returncode == 0, run.output[-3000:]
    record = next(check for check in run.summary()["checks"] if check["check_id"] == "health")
    assert record["outcome"] == "passed"
    assert record["attempts"] >= 2
    assert RESTART_SECONDS - 1 <= record["ready_after"] <= 40
    assert re.search(
        rf"runbook --wait-ready: {SYSTEM}:health green after [\d.]+ s \(\d+ attempts\)", run.output
    )
    page = (run.folder / "report.html").read_text(encoding="utf-8")
    assert "Waited for readiness (--wait-ready)" in page


def test_wait_ready_gives_up_at_the_deadline(app: ReadersApp) -> None:
    began = time.monotonic()
    run = app.run("--wait-ready=5s", marker="smoke")
    assert run.returncode == 1
    assert time.monotonic() - began < 60
    record = next(check for check in run.summary()["checks"] if check["check_id"] == "health")
    assert "still failing after waiting 5s" in record["found"]
    assert record["attempts"] >= 2


def test_only_smoke_checks_are_retried(app: ReadersApp) -> None:
    app.break_("worker")  # a daily check, not smoke
    run = app.run("--wait-ready=5s", "-k", "worker", marker="daily")
    record = next(check for check in run.summary()["checks"] if check["check_id"] == "worker-queue")
    assert record["attempts"] == 1


def test_bad_duration_is_a_usage_error(app: ReadersApp) -> None:
    run = app.run("--wait-ready=soon", marker="smoke")
    assert run.returncode == 4
    assert "--wait-ready: not a duration: 'soon'" in run.output


GATE = """\
system: gate
runbook: runbook.md
hosts:
  local: "local://"
checks:
  files:
{checks}
"""
# Files that appear 2, 4 and 6 s after the run starts (services coming up one by one), and one
# that never does: the gate must not spend its whole budget on the one that never turns green.
APPEARING = {"api": 2.0, "worker": 4.0, "redis": 6.0}


def test_one_check_that_never_turns_green_starves_no_other(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    lines = [
        f"    - {{id: {name}, title: {name} is up, path: {tmp_path / name}, markers: [smoke],\n"
        f"       severity: P1, section: '1.', remedy: start {name}}}"
        for name in ["never", *APPEARING]  # the one that never turns green comes first
    ]
    description = tmp_path / "gate.yml"
    description.write_text(GATE.format(checks="\n".join(lines)), encoding="utf-8")
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
    command += [f"--reports-dir={reports}", "-m", "smoke", "--wait-ready=20s"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    began = time.monotonic()
    for name, after in sorted(APPEARING.items(), key=lambda item: item[1]):
        time.sleep(max(0.0, after - (time.monotonic() - began)))
        (tmp_path / name).write_text("up", encoding="utf-8")
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 1, output[-3000:]
    records = {
        check["check_id"]: check
        for check in json.loads((reports / "latest" / "summary.json").read_text())["checks"]
    }
    assert records["never"]["outcome"] == "failed"
    assert "still failing after waiting 20s" in records["never"]["found"]
    green = {name: records[name]["ready_after"] for name in APPEARING}
    for name in APPEARING:
        assert records[name]["outcome"] == "passed", records[name]
        assert records[name]["attempts"] >= 2
    # Each turned green at its own time (its file cannot be found before it exists), in order.
    assert green["api"] < green["worker"] < green["redis"], green
    assert records["never"]["attempts"] >= records["redis"]["attempts"]
