"""`--wait-ready`: a smoke gate started while the service restarts turns green once it answers.

The service is a /health server on a fixed loopback port that is down when the gate starts
and comes back a few seconds later (a restart after a deploy). Without --wait-ready the gate
fails at once; with it, the health check is retried until it answers and says when it did.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from selftests.data_servers import free_port
from selftests.readers_kit import SYSTEM, ReadersApp

RESTART_SECONDS = 4.0


@pytest.fixture
def app(tmp_path: Path) -> ReadersApp:
    return ReadersApp(tmp_path, free_port()).write()


class Warming(BaseHTTPRequestHandler):
    """/health answers 503 to its first `cold` requests (the new container still starting), then
    200: the service turns green after a number of attempts, not of seconds, whatever the load."""

    cold = 1
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        ready = type(self).seen > self.cold
        body = b'{"status": "healthy"}' if ready else b'{"status": "starting"}'
        self.send_response(200 if ready else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def warming(port: int, cold: int) -> ThreadingHTTPServer:
    handler = type("Handler", (Warming,), {"cold": cold, "seen": 0})
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def restarting(app: ReadersApp) -> Iterator[list[ThreadingHTTPServer]]:
    """The service answers 'starting' (503) to the gate's first attempt, then is healthy."""
    server = warming(app.port, cold=1)
    yield [server]
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_without_wait_ready_the_gate_fails_at_once(app: ReadersApp) -> None:
    began = time.monotonic()
    run = app.run(marker="smoke")
    assert run.returncode == 1
    assert run.outcomes()["health"] == "failed"
    assert time.monotonic() - began < 30
    assert "--wait-ready" not in run.output


@pytest.mark.slow
def test_wait_ready_turns_a_restarted_service_green(
    app: ReadersApp, restarting: list[ThreadingHTTPServer]
) -> None:
    run = app.run("--wait-ready=60s", marker="smoke")
    assert run.returncode == 0, run.output[-3000:]
    record = next(check for check in run.summary()["checks"] if check["check_id"] == "health")
    assert record["outcome"] == "passed"
    assert record["attempts"] == 2
    assert record["ready_after"] > 0
    assert re.search(
        rf"runbook --wait-ready: {SYSTEM}:health green after [\d.]+ s \(\d+ attempts\)", run.output
    )
    page = (run.folder / "report.html").read_text(encoding="utf-8")
    assert "Waited for readiness (--wait-ready)" in page


@pytest.mark.slow
def test_wait_ready_gives_up_at_the_deadline(app: ReadersApp) -> None:
    began = time.monotonic()
    run = app.run("--wait-ready=5s", marker="smoke")
    assert run.returncode == 1
    assert time.monotonic() - began < 60
    record = next(check for check in run.summary()["checks"] if check["check_id"] == "health")
    assert "still failing after waiting 5s" in record["found"]
    assert record["attempts"] >= 2


@pytest.mark.slow
def test_only_smoke_checks_are_retried(app: ReadersApp) -> None:
    app.break_("worker")  # a daily check, not smoke
    run = app.run("--wait-ready=5s", "-k", "worker", marker="daily")
    record = next(check for check in run.summary()["checks"] if check["check_id"] == "worker-queue")
    assert record["attempts"] == 1


@pytest.mark.slow
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
  http:
{checks}
"""
# Services that turn green at their 2nd, 3rd and 4th attempt (coming up one by one after a
# deploy), and one that never does: the gate must not spend its budget on the one that never
# turns green. Counted in attempts, so a busy runner cannot change what is proven.
COLD = {"api": 1, "worker": 2, "redis": 3}


@pytest.mark.slow
def test_one_check_that_never_turns_green_starves_no_other(tmp_path: Path) -> None:
    servers = {name: warming(0, cold) for name, cold in COLD.items()}
    servers["never"] = warming(0, cold=10**9)
    try:
        lines = [
            f"    - {{id: {name}, title: {name} is up, url: 'http://127.0.0.1:{server.server_address[1]}/health',"
            f" markers: [smoke], severity: P1, section: '1.', remedy: start {name}}}"
            for name, server in sorted(servers.items(), key=lambda item: item[0] != "never")
        ]
        description = tmp_path / "gate.yml"
        description.write_text(GATE.format(checks="\n".join(lines)), encoding="utf-8")
        reports = tmp_path / "reports"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
        command += [f"--reports-dir={reports}", "-m", "smoke", "--wait-ready=12s"]
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
        root = Path(__file__).resolve().parents[1]
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()
    assert done.returncode == 1, done.stdout[-3000:]
    summary = json.loads((reports / "latest" / "summary.json").read_text(encoding="utf-8"))
    records = {check["check_id"]: check for check in summary["checks"]}
    assert records["never"]["outcome"] == "failed"
    assert "still failing after waiting 12s" in records["never"]["found"]
    for name, cold in COLD.items():
        assert records[name]["outcome"] == "passed", records[name]
        assert records[name]["attempts"] == cold + 1  # one per round: none was starved
    green = {name: records[name]["ready_after"] for name in COLD}
    assert green["api"] <= green["worker"] <= green["redis"], green  # each at its own round
    assert records["never"]["attempts"] > records["redis"]["attempts"]
