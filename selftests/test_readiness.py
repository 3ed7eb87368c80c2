"""`--wait-ready`: a smoke gate started while the service restarts turns green once it answers.

The service is a /health server on a fixed loopback port that is down when the gate starts
and comes back a few seconds later (a restart after a deploy). Without --wait-ready the gate
fails at once; with it, the health check is retried until it answers and says when it did.
"""

from __future__ import annotations

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
