#!/usr/bin/python3
"""Stand-in for Magic Master's backend, run by systemd as the `magic` user on the lab host.

Python's standard library only (the host is a bare Debian root with python3, sqlite3 and
ffmpeg). What the runbook says of the real one, answered truthfully from the host's state:

- GET /api/health: database (a real query on the SQLite file), disk (free MB of temp_dir,
  `low` under 200), ffmpeg (found on PATH and answering `-version`), jobs, uptime, version.
- GET /status: the public HTML status page (refreshes itself).
- GET /api/metrics: flat JSON (uptime_seconds, jobs_running, jobs_total, version).
- GET /api/admin/backup/db: the whole database as a SQLite file, for an admin's JWT (HS256).
- POST /api/master: a mastering job; ffmpeg really runs on the named upload in temp_dir and
  a failure is logged as an ERROR line (stdout, so journald has it).
- CORS as Starlette's middleware does it: origins from MAGIC_MASTER_CORS_ORIGINS (unset: `*`);
  a preflight from another origin gets 400 "Disallowed CORS origin".
- Anything unexpected answers 500 and logs ERROR with the traceback, never a dropped connection.
Settings come from the environment (the unit's EnvironmentFile, /opt/magic-master/.env).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = "2.3.1"
STARTED = time.time()
DB_PATH = os.environ.get("MAGIC_MASTER_DB_PATH", os.path.join(os.path.dirname(__file__), "magic_master.db"))
TEMP_DIR = os.environ.get("MAGIC_MASTER_TEMP_DIR", "/opt/magic-master/tmp")
LOW_DISK_MB = 200
JOBS: dict[str, str] = {}  # job id -> state; in memory, lost on restart as the runbook warns
LOCK = threading.Lock()


def log(level: str, message: str) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {level} magic_master: {message}", flush=True)


def cors_origins() -> list[str]:
    raw = os.environ.get("MAGIC_MASTER_CORS_ORIGINS", "").strip()
    return [origin.strip() for origin in raw.split(",") if origin.strip()] or ["*"]


def database() -> dict[str, str]:
    if not os.path.exists(DB_PATH):
        return {"status": "unavailable", "detail": "database file not found"}
    try:
        with sqlite3.connect(f"file:{DB_PATH}?mode=rw", uri=True, timeout=2) as db:
            db.execute("SELECT count(*) FROM users").fetchone()
    except sqlite3.Error as exc:
        return {"status": "error", "detail": str(exc)}
    return {"status": "ok"}


def disk() -> dict[str, Any]:
    try:
        free_mb = shutil.disk_usage(TEMP_DIR).free // (1 << 20)
    except OSError as exc:
        return {"status": "error", "detail": str(exc)}
    return {"status": "low" if free_mb < LOW_DISK_MB else "ok", "free_mb": free_mb, "path": TEMP_DIR}


def ffmpeg() -> str:
    program = shutil.which("ffmpeg")
    if program is None:
        return "missing"
    try:
        done = subprocess.run([program, "-version"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return "ok" if done.returncode == 0 else "missing"


def health() -> dict[str, Any]:
    components = {"database": database(), "disk": disk(), "ffmpeg": ffmpeg()}
    healthy = (
        components["database"]["status"] == "ok"
        and components["disk"]["status"] == "ok"
        and components["ffmpeg"] == "ok"
    )
    with LOCK:
        running = sum(1 for state in JOBS.values() if state == "running")
        cached = len(JOBS)
    return {
        "status": "ok" if healthy else "degraded",
        "components": components,
        "jobs": {"running": running, "total_cached": cached},
        "uptime_since": datetime.fromtimestamp(STARTED, UTC).isoformat(),
        "version": VERSION,
    }


def admin_token_valid(header: str) -> bool:
    """An HS256 JWT signed with MAGIC_MASTER_JWT_SECRET whose payload says role admin."""
    secret = os.environ.get("MAGIC_MASTER_JWT_SECRET", "")
    if not secret or not header.startswith("Bearer "):
        return False
    try:
        head, payload, signature = header[len("Bearer ") :].split(".")
        expected = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, given) and claims.get("role") == "admin"


def master(job_id: str, upload: str) -> tuple[int, dict[str, Any]]:
    """Run ffmpeg on temp_dir/<upload> (normalize loudness to a WAV); a failure is an ERROR line."""
    source = os.path.join(TEMP_DIR, os.path.basename(upload))
    with LOCK:
        JOBS[job_id] = "running"
    with tempfile.TemporaryDirectory(dir=TEMP_DIR) as scratch:
        command = ["ffmpeg", "-nostdin", "-v", "error", "-i", source, "-af", "loudnorm", f"{scratch}/out.wav"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            code, said = done.returncode, (done.stderr.strip().splitlines() or ["no output"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            code, said = -1, str(exc)
    state = "done" if code == 0 else "failed"
    with LOCK:
        JOBS[job_id] = state
    if code != 0:
        log("ERROR", f"mastering job {job_id} failed: ffmpeg exited {code}: {said}")
        return 500, {"job": job_id, "status": state}
    log("INFO", f"mastering job {job_id} done")
    return 200, {"job": job_id, "status": state}


STATUS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="30">
<title>Magic Master status</title></head>
<body><h1>Magic Master</h1><p>Status: <b>{status}</b></p><p>Version {version}</p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "magic-master"

    def log_message(self, format: str, *args: Any) -> None:
        return  # request lines are not the application's log

    def _cors(self) -> dict[str, str]:
        origin = self.headers.get("Origin")
        allowed = cors_origins()
        if origin is None:
            return {}
        if "*" in allowed:
            return {"Access-Control-Allow-Origin": "*"}
        if origin in allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self._cors(), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _options(self) -> None:
        origin = self.headers.get("Origin")
        if origin is None or self.headers.get("Access-Control-Request-Method") is None:
            self._send(405, b"", "text/plain")
            return
        if not self._cors():
            self._send(400, b"Disallowed CORS origin", "text/plain")
            return
        self._send(200, b"OK", "text/plain", {"Access-Control-Allow-Methods": "GET, POST, OPTIONS"})

    def _guarded(self, handler: Callable[[], None]) -> None:
        """An unexpected error answers 500 and logs ERROR with its traceback, as uvicorn does."""
        try:
            handler()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away mid-answer: nothing to answer, and not the service's error
        except Exception:
            log("ERROR", f"{self.command} {self.path} failed: {traceback.format_exc()}")
            self._json(500, {"detail": "Internal Server Error"})

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def do_OPTIONS(self) -> None:
        self._guarded(self._options)

    def _get(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/health":
            self._json(200, health())
        elif path == "/api/metrics":
            with LOCK:
                running = sum(1 for state in JOBS.values() if state == "running")
                total = len(JOBS)
            self._json(
                200,
                {
                    "uptime_seconds": round(time.time() - STARTED, 1),
                    "jobs_running": running,
                    "jobs_total": total,
                    "version": VERSION,
                },
            )
        elif path == "/status":
            page = STATUS_PAGE.format(status=health()["status"], version=VERSION)
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif path == "/api/admin/backup/db":
            self._backup()
        else:
            self._json(404, {"detail": "Not Found"})

    def do_HEAD(self) -> None:
        self.do_GET()

    def _post(self) -> None:
        if self.path.split("?", 1)[0] != "/api/master":
            self._json(404, {"detail": "Not Found"})
            return
        length = min(int(self.headers.get("Content-Length") or 0), 1 << 16)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
            upload = str(request["upload"])
        except (ValueError, KeyError, TypeError):
            self._json(422, {"detail": "body must be JSON with an upload name"})
            return
        job_id = hashlib.sha256(f"{time.time()}{upload}".encode()).hexdigest()[:12]
        self._json(*master(job_id, upload))

    def _backup(self) -> None:
        if not admin_token_valid(self.headers.get("Authorization", "")):
            self._json(401, {"detail": "Not authenticated"})
            return
        with tempfile.TemporaryDirectory(dir=TEMP_DIR) as scratch:
            copy = os.path.join(scratch, "backup.sqlite3")
            try:
                live = sqlite3.connect(f"file:{DB_PATH}?mode=ro", uri=True)
                with live, sqlite3.connect(copy) as out:
                    live.backup(out)
                live.close()
            except sqlite3.Error as exc:
                log("ERROR", f"admin backup failed: {exc}")
                self._json(500, {"detail": "backup failed"})
                return
            with open(copy, "rb") as file:
                data = file.read()
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M")
        disposition = f'attachment; filename="backup_{stamp}.sqlite3"'
        self._send(200, data, "application/vnd.sqlite3", {"Content-Disposition": disposition})


def main() -> None:
    port = os.environ.get("MAGIC_MASTER_PORT", "8000")
    if not port.isdigit():
        log("ERROR", f"invalid setting MAGIC_MASTER_PORT={port!r}: not a port number; exiting")
        sys.exit(2)
    server = ThreadingHTTPServer(("0.0.0.0", int(port)), Handler)
    log("INFO", f"Magic Master {VERSION} listening on :{port} (database {DB_PATH}, temp_dir {TEMP_DIR})")
    server.serve_forever()


if __name__ == "__main__":
    main()
