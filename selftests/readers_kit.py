"""What the readers' tests share: a small system on local:// to break and heal, runs, receivers.

`ReadersApp` describes a system whose checks read files under its folder (`cat state/NAME`
must print `ok`) and one HTTP endpoint on loopback; a test breaks a check by writing
something else into its file (or removing it) and heals it by writing `ok`, between runs of
the real suite (a pytest subprocess, plugin on, from the project root). `Receiver` is an HTTP
server on loopback that records every request: the Telegram Bot API's stand-in and the
webhook's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CALENDAR_RUNBOOK = ROOT.parent / "shared" / "runbooks" / "ai-calendar-assistant.md"
SYSTEM = "readers-app"
SECRET_ENV = "RB_READERS_VALUE"  # not a secret-looking name: secret because a check reads ${...}
SECRET = "Kestrel-Quarry-8812-xyz"

DESCRIPTION = """\
system: {system}
title: Readers App
runbook: {runbook}
escalation: {escalation}
hosts:
  local: "local://"
checks:
  commands:
    - id: api-config
      title: the API's config is in place
      run: cat {state}/api
      expect_stdout: ok
      severity: P1
      section: "2. P1: service fully down"
      remedy: restore the config from the last backup and restart the API
    - id: worker-queue
      title: the worker drains its queue
      run: cat {state}/worker
      expect_stdout: ok
      severity: P2
      section: "3.4 Redis connection refused"
      remedy: docker-compose restart worker
    - id: cache-warm
      title: the cache is warm
      run: cat {state}/cache
      expect_stdout: ok
      severity: P3
      section: "3.3 Memory usage"
      remedy: curl -X POST http://localhost:8000/admin/warm
    - id: flappy
      title: the webhook answers Telegram
      run: cat {state}/flappy
      expect_stdout: ok
      severity: P2
      section: "3.2 Telegram webhook"
      remedy: check the webhook with getWebhookInfo
    - id: token-check
      title: the bot token is accepted
      run: 'state=$(cat {state}/token); echo "token ${{{secret_env}}} state $state"; test "$state" = ok'
      severity: P1
      section: "3.2 Telegram webhook"
      remedy: rotate the bot token
  http:
    - id: health
      title: /health answers 200
      url: http://127.0.0.1:{port}/health
      timeout: 2
      severity: P1
      markers: [smoke, daily, incident]
      section: "1. Daily Health Check"
      remedy: docker-compose up -d telegram-bot
    - id: prometheus-healthy
      title: Prometheus is healthy
      url: http://127.0.0.1:9/-/healthy
      requires_feature: monitoring
      severity: P3
      section: "1. Daily Health Check (6. Monitoring)"
      remedy: docker-compose -f docker-compose.monitoring.yml ps
"""
CHECKS = ("api", "worker", "cache", "flappy", "token")


def calendar_escalation() -> dict[str, Any]:
    """The calendar description's escalation matrix, as data: readers-app uses the calendar's runbook."""
    text = (ROOT / "systems" / "ai-calendar-assistant.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["escalation"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    reports: Path

    folder: Path  # this run's folder (`latest` right after it)

    def summary(self) -> dict[str, Any]:
        return json.loads((self.folder / "summary.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def outcomes(self) -> dict[str, str]:
        return {check["check_id"]: check["outcome"] for check in self.summary()["checks"]}

    def history(self) -> dict[str, Any]:
        history = self.summary()["history"]
        assert history is not None, self.output[-3000:]
        return history  # type: ignore[no-any-return]

    def changed(self, status: str) -> list[str]:
        return [change["check_id"] for change in self.history()[status]]


@dataclass
class ReadersApp:
    base: Path
    port: int  # where /health answers (or not)
    runbook: Path = CALENDAR_RUNBOOK

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def description(self) -> Path:
        return self.base / f"{SYSTEM}.yml"

    @property
    def reports(self) -> Path:
        return self.base / "reports"

    def write(self) -> ReadersApp:
        self.state.mkdir(parents=True, exist_ok=True)
        runbook = self.runbook
        if not runbook.is_file():  # the shared runbooks beside the repo; a stand-in elsewhere
            runbook = self.base / "runbook.md"
            runbook.write_text("# Readers runbook\n", encoding="utf-8")
        self.description.write_text(
            DESCRIPTION.format(
                system=SYSTEM,
                runbook=runbook,
                escalation=json.dumps(calendar_escalation(), ensure_ascii=False),
                state=self.state,
                port=self.port,
                secret_env=SECRET_ENV,
            ),
            encoding="utf-8",
        )
        for name in CHECKS:
            self.heal(name)
        return self

    def break_(self, name: str, value: str = "broken") -> None:
        (self.state / name).write_text(f"{value}\n", encoding="utf-8")

    def heal(self, name: str) -> None:
        (self.state / name).write_text("ok\n", encoding="utf-8")

    def run(self, *args: str, marker: str = "daily", env: dict[str, str] | None = None) -> Run:
        return run_suite(
            f"--systems={self.description}",
            f"--reports-dir={self.reports}",
            "-m",
            marker,
            *args,
            reports=self.reports,
            env=env,
        )


# Variables the suite reads: a test gives them explicitly, never from the machine it runs on.
OWN_VARIABLES = ("PYTEST_", "ALERT_TELEGRAM_", "RUNBOOK_")


def suite_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(OWN_VARIABLES) and not key.lower().endswith("_proxy")
    }
    env[SECRET_ENV] = SECRET
    env.update(extra or {})
    return env


def run_suite(*args: str, reports: Path, env: dict[str, str] | None = None, timeout: float = 300) -> Run:
    """The suite as an operator runs it (plugin on), from the project root."""
    command = [sys.executable, "-m", "pytest", "tests_health", "tests_backup", "tests_config", *args]
    environment = suite_environment(env)
    done = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(done.returncode, done.stdout + done.stderr, reports, (reports / "latest").resolve())


@dataclass
class Request:
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on loopback that records requests and answers `status` with `answer` (JSON)."""

    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(Request("POST", self.path, self.rfile.read(length)))
                body = json.dumps(receiver.answer).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


class Health(BaseHTTPRequestHandler):
    """/health answers 200 {"status": "healthy"}."""

    def do_GET(self) -> None:
        body = b'{"status": "healthy"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_health(port: int = 0) -> ThreadingHTTPServer:
    """A /health server on loopback in a thread; `shutdown()` + `server_close()` stop it."""
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
