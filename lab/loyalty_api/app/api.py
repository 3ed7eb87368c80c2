"""Stand-in for the Loyalty API (`api` of docker-compose.production.yml), for the lab.

What the runbook says of the real one, answered truthfully from real PostgreSQL and Redis:
/health, /live, /ready (db and redis; Redis is optional: without it `degraded`, still 200),
/metrics behind X-Metrics-Token (or a Bearer token, as Prometheus scrapes), the integration API
that smoke-integrations.sh walks with X-Api-Key, MAINTENANCE_MODE (everything but health and
metrics answers 503) and READ_ONLY_MODE (only GET/HEAD/OPTIONS). Every request is counted in
http_requests_total and, over ALERT_HTTP_SLOW_THRESHOLD_MS, in http_slow_requests_total; the
outbox and external-call metrics are read from the database the worker writes, at each scrape.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg2
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

ENV = os.environ
DATABASE_URL = ENV.get("DATABASE_URL", "")
REDIS_URL = ENV.get("REDIS_URL", "")
SLOW_SECONDS = int(ENV.get("ALERT_HTTP_SLOW_THRESHOLD_MS", "500")) / 1000
OPEN_PATHS = {"/health", "/live", "/ready", "/metrics"}
STATUSES = ("200", "201", "400", "401", "403", "404", "429", "500", "503")


def flag(name: str) -> bool:
    return ENV.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


class FromDatabase:
    """loyalty_outbox_pending, loyalty_outbox_dead_total, external_requests_total: the worker's rows."""

    def collect(self) -> Iterator[Any]:
        try:
            with transaction(2) as cursor:
                cursor.execute("SELECT status, count(*) FROM outbox GROUP BY status")
                by_status = dict(cursor.fetchall())
                cursor.execute("SELECT provider, result, status, count FROM external_requests")
                calls = cursor.fetchall()
        except psycopg2.Error:
            return  # the database is away: these families are absent from this scrape
        pending = GaugeMetricFamily("loyalty_outbox_pending", "outbox events waiting for delivery")
        pending.add_metric([], by_status.get("pending", 0))
        dead = CounterMetricFamily("loyalty_outbox_dead", "outbox events given up after retries")
        dead.add_metric([], by_status.get("dead", 0))
        external = CounterMetricFamily(
            "external_requests", "calls to external providers", labels=["provider", "result", "status"]
        )
        for provider, result, status, count in calls:
            external.add_metric([provider, result, status], count)
        yield from (pending, dead, external)


REGISTRY = CollectorRegistry()
REQUESTS = Counter("http_requests", "HTTP requests", ["method", "status"], registry=REGISTRY)
SLOW = Counter("http_slow_requests", "requests over ALERT_HTTP_SLOW_THRESHOLD_MS", registry=REGISTRY)
DURATION = Histogram("http_request_duration_seconds", "request time", registry=REGISTRY)
LOGINS = Counter("portal_auth_login", "portal logins", registry=REGISTRY)
REFRESHES = Counter("portal_auth_refresh", "portal token refreshes", registry=REGISTRY)
REGISTRY.register(FromDatabase())
for method in ("GET", "POST"):
    for code in STATUSES:
        REQUESTS.labels(method, code)  # present at 0: increase() then sees a series' first burst


# Idle connections kept for the next request, as the real API's Prisma pool keeps them: a new
# connection per request (a PostgreSQL backend forked each time) made /ready answer 503 within
# its 2 s when two checklists ran at once on a busy 2-core runner.
IDLE: list[Any] = []
IDLE_LOCK = threading.Lock()
POOL_SIZE = 8


def _connection(timeout: float) -> Any:
    """An idle connection that still answers, or a new one (a dead one, after postgres restarted, is
    dropped: the faults that stop the database must see errors, not a stale pool)."""
    while True:
        with IDLE_LOCK:
            db = IDLE.pop() if IDLE else None
        if db is None:
            return psycopg2.connect(DATABASE_URL, connect_timeout=max(1, int(timeout)))
        try:
            with db.cursor() as cursor:
                cursor.execute("SELECT 1")
            db.rollback()
            return db
        except psycopg2.Error:
            db.close()


@contextlib.contextmanager
def transaction(timeout: float) -> Iterator[Any]:
    """A cursor in one transaction on a pooled connection; back to the pool after, closed on error."""
    db = _connection(timeout)
    try:
        with db, db.cursor() as cursor:
            yield cursor
    except BaseException:
        db.close()
        raise
    with IDLE_LOCK:
        if len(IDLE) < POOL_SIZE:
            IDLE.append(db)
            return
    db.close()


def redis_ok() -> bool:
    """PING over a plain socket (REDIS_URL redis://host:port/db)."""
    parts = urlsplit(REDIS_URL)
    if not parts.hostname:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def db_ok() -> bool:
    try:
        with transaction(2) as cursor:
            cursor.execute("SELECT 1")
            return True
    except psycopg2.Error:
        return False


class Handler(BaseHTTPRequestHandler):
    server_version = "loyalty-api"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)

    def _answer(self, status: int, document: Any, content_type: str = "application/json") -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status = status

    def _body(self) -> dict[str, Any]:
        length = min(int(self.headers.get("Content-Length") or 0), 1 << 16)
        try:
            document = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}

    def _handle(self) -> None:
        started = time.monotonic()
        self.status = 500
        try:
            self._route(urlsplit(self.path).path)
        except psycopg2.Error as exc:
            print(f"ERROR database: {str(exc).strip()}", flush=True)
            self._answer(500, {"error": "database error"})
        finally:
            elapsed = time.monotonic() - started
            REQUESTS.labels(
                self.command if self.command in ("GET", "POST") else "OTHER", str(self.status)
            ).inc()
            DURATION.observe(elapsed)
            if elapsed > SLOW_SECONDS:
                SLOW.inc()

    do_GET = do_POST = do_HEAD = _handle

    def _route(self, path: str) -> None:
        if path in ("/health", "/live"):
            return self._answer(200, {"status": "ok"})
        if path == "/ready":
            db, redis = db_ok(), redis_ok()
            status = "ok" if db and redis else ("degraded" if db else "error")
            components = {"db": "ok" if db else "error", "redis": "ok" if redis else "error"}
            return self._answer(200 if db else 503, {"status": status, "components": components})
        if path == "/metrics":
            token = ENV.get("METRICS_TOKEN", "")
            given = (
                self.headers.get("X-Metrics-Token") or self.headers.get("Authorization", "")[len("Bearer ") :]
            )
            if not token or given != token:
                return self._answer(401, {"error": "metrics token required"})
            return self._answer(200, generate_latest(REGISTRY), "text/plain; version=0.0.4; charset=utf-8")
        if flag("MAINTENANCE_MODE"):
            return self._answer(503, {"error": "maintenance"})
        if flag("READ_ONLY_MODE") and self.command not in ("GET", "HEAD", "OPTIONS"):
            return self._answer(403, {"error": "read-only mode"})
        if not path.startswith("/api/integrations/"):
            return self._answer(404, {"error": "not found"})
        if self.headers.get("X-Api-Key") != ENV.get("INTEGRATION_API_KEY") or not ENV.get(
            "INTEGRATION_API_KEY"
        ):
            return self._answer(401, {"error": "bad api key"})
        self._integration(path)

    def _integration(self, path: str) -> None:
        balance = re.fullmatch(r"/api/integrations/customers/([^/]+)/(balance|history)", path)
        if path == "/api/integrations/code" and self.command == "POST":
            token = str(self._body().get("user_token", ""))
            with transaction(5) as cursor:
                cursor.execute("SELECT id, phone FROM customers WHERE user_token = %s", (token,))
                row = cursor.fetchone()
            if row is None:
                return self._answer(403, {"error": "bad user token"})
            return self._answer(200, {"customer": {"id": str(row[0]), "phone": row[1]}})
        if balance and self.command == "GET":
            customer, what = unquote(balance.group(1)), balance.group(2)
            if not customer.isdigit():
                return self._answer(404, {"error": "no such customer"})
            with transaction(5) as cursor:
                # The hot path fails fast rather than queue behind a lock: 150 ms, far below the
                # 500 ms slow threshold, so a 5xx burst on a busy runner is not also counted slow.
                if what == "balance":
                    cursor.execute("SET LOCAL statement_timeout = '150ms'")
                    cursor.execute("SELECT balance FROM customers WHERE id = %s", (int(customer),))
                    row = cursor.fetchone()
                    answer = {"balance": row[0], "currency": "points"} if row else None
                else:
                    cursor.execute(
                        "SELECT count(*), coalesce(sum(p.amount), 0) FROM customers c "
                        "LEFT JOIN purchases p ON p.customer_id = c.id WHERE c.id = %s GROUP BY c.id",
                        (int(customer),),
                    )
                    row = cursor.fetchone()
                    answer = {"purchases": row[0], "total": row[1]} if row else None
            return self._answer(200, answer) if answer else self._answer(404, {"error": "no such customer"})
        if path == "/api/integrations/purchases" and self.command == "POST":
            order = self._body()
            try:
                customer, amount = int(order["customer_id"]), int(order["amount"])
                outlet = str(order["outlet_id"])
            except (KeyError, TypeError, ValueError):
                return self._answer(400, {"error": "customer_id, outlet_id and amount needed"})
            with transaction(5) as cursor:
                cursor.execute(
                    "INSERT INTO purchases (customer_id, outlet_id, amount) VALUES (%s, %s, %s) RETURNING id",
                    (customer, outlet, amount),
                )
                purchase = cursor.fetchone()[0]
                cursor.execute(
                    "UPDATE customers SET balance = balance + %s WHERE id = %s", (amount // 20, customer)
                )
                payload = json.dumps({"event": "purchase.created", "purchase": purchase, "amount": amount})
                cursor.execute(
                    "INSERT INTO outbox (url, payload) VALUES (%s, %s)",
                    (ENV["MERCHANT_WEBHOOK_URL"], payload),
                )
            return self._answer(201, {"id": str(purchase), "earned": amount // 20})
        self._answer(404, {"error": f"no route {self.command} {path}"})


def main() -> None:
    # PID 1 of its container: without a handler SIGTERM is ignored and `docker stop` waits to kill.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not DATABASE_URL:
        print("ERROR DATABASE_URL is not set; check .env.production", flush=True)
        sys.exit(1)
    port = int(ENV.get("PORT", "3000"))
    print(f"loyalty api listening on :{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
