"""A stand-in for Map v12's web API on loopback: a small WSGI app whose faults a test picks.

What the runbook says of the real one: `/health`, `/ready` (db + redis, 503 when one
fails), `/metrics` (Prometheus text; localhost only or with `X-API-KEY`), `/login`
(10 attempts a minute per address, then 429), `/api/chat/<id>` (at most 500 messages),
`/api/tracker/admin/devices` (`total` / `has_more`), and nginx in front (`/proxied`
answers 502 when the upstream is down). `Faults` switches each to its broken form.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

METRICS_KEY = "k3y-for-metrics-only"


@dataclass
class Faults:
    db: str = "ok"
    redis: str = "ok"
    metrics_public: bool = False
    login_limit: int | None = 10
    chat_messages: int = 500
    devices_total: bool = True
    upstream_down: bool = False
    slow_ms: int = 0
    errors_every: int = 0  # every Nth /api/markers request answers 500
    cookie_secure: bool = True
    login_attempts: list[float] = field(default_factory=list)
    calls: int = 0


class App:
    def __init__(self) -> None:
        self.faults = Faults()
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "requests", ["method", "status"], registry=self.registry)
        self.requests.labels("GET", "200").inc(120)
        self.requests.labels("GET", "500").inc(3)
        Gauge("db_pool_in_use", "connections in use", registry=self.registry).set(4)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        status, body, headers = self.route(method, path, environ)
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
        start_response(
            f"{status} {reason.get(status, 'Status')}", [("Content-Length", str(len(body))), *headers]
        )
        return [body]

    def route(
        self, method: str, path: str, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        faults = self.faults
        if path == "/health":
            return self.json(200, {"status": "ok", "db": faults.db})
        if path == "/ready":
            components = {"db": faults.db, "redis": faults.redis}
            ok = all(value == "ok" for value in components.values())
            return self.json(
                200 if ok else 503, {"status": "ready" if ok else "not ready", "components": components}
            )
        if path == "/metrics":
            key_ok = environ.get("HTTP_X_API_KEY") == METRICS_KEY
            if not (faults.metrics_public or key_ok):
                return 404, b"Not Found", [("Content-Type", "text/plain")]
            return 200, generate_latest(self.registry), [("Content-Type", "text/plain; version=0.0.4")]
        if path == "/login" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = parse_qs(environ["wsgi.input"].read(length).decode())
            assert form.get("username") == ["runbook-probe@invalid"], form
            with self.lock:
                now = time.monotonic()
                faults.login_attempts = [when for when in faults.login_attempts if now - when < 60]
                faults.login_attempts.append(now)
                limited = faults.login_limit is not None and len(faults.login_attempts) > faults.login_limit
            return self.json(429 if limited else 401, {"error": "too many" if limited else "bad login"})
        if path.startswith("/api/chat/"):
            messages = [{"id": number, "text": "hi"} for number in range(faults.chat_messages)]
            return self.json(200, {"messages": messages})
        if path == "/api/tracker/admin/devices":
            page: dict[str, Any] = {"items": [{"id": 1}, {"id": 2}]}
            if faults.devices_total:
                page.update(total=2, has_more=False)
            return self.json(200, page)
        if path == "/api/markers":
            time.sleep(faults.slow_ms / 1000)
            with self.lock:
                faults.calls += 1
                failing = faults.errors_every and faults.calls % faults.errors_every == 0
            return self.json(500 if failing else 200, {"markers": []})
        if path == "/proxied":
            if faults.upstream_down:
                return 502, b"<html>502 Bad Gateway</html>", [("Content-Type", "text/html")]
            return self.json(200, {"status": "ok"})
        if path == "/session":
            cookie = "session=x; HttpOnly" + ("; Secure" if faults.cookie_secure else "")
            return 200, b"{}", [("Content-Type", "application/json"), ("Set-Cookie", cookie)]
        return self.json(404, {"error": "not found"})

    @staticmethod
    def json(status: int, document: Any) -> tuple[int, bytes, list[tuple[str, str]]]:
        return status, json.dumps(document).encode(), [("Content-Type", "application/json")]


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64  # the load tests open 20 connections at once


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(app: Any, handler_class: type[WSGIRequestHandler] = QuietHandler) -> Iterator[str]:
    """Serve the WSGI `app` on a loopback port for the duration of the generator; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=ThreadingServer, handler_class=handler_class)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
