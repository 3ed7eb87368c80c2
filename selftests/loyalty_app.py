"""A stand-in for the Loyalty API on loopback: its metrics, driven by the test, and its integration API.

What the runbook says of the real one: `/metrics` with `X-Metrics-Token` (http_requests_total,
http_slow_requests_total, loyalty_outbox_pending, loyalty_outbox_dead_total,
external_requests_total by provider/result/status) and the integration API that
smoke-integrations.sh walks with `X-Api-Key`: `/code` turns a user's token into a customer,
the customer's balance, and (mutating) a purchase at an outlet. `restart()` starts the
counters from zero, as a restarted process does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from selftests import map_app
from selftests.map_app import QuietHandler

METRICS_TOKEN = "metrics-token-4711"
API_KEY = "integration-key-0815"
USER_TOKEN = "user-token-2024"
CUSTOMER_ID = "c/42 x"  # a path segment that needs quoting


class Metrics:
    """The API's Prometheus metrics in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "requests", ["method", "status"], registry=self.registry)
        self.slow = Counter("http_slow_requests", "requests over the threshold", registry=self.registry)
        self.pending = Gauge("loyalty_outbox_pending", "outbox events waiting", registry=self.registry)
        self.dead = Counter("loyalty_outbox_dead", "outbox events given up", registry=self.registry)
        self.external = Counter(
            "external_requests", "calls out", ["provider", "result", "status"], registry=self.registry
        )
        self.requests.labels("GET", "200").inc(100)
        self.external.labels("telegram", "ok", "200").inc(10)
        self.external.labels("merchant_webhook", "ok", "200").inc(10)


class LoyaltyApp:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.lock = threading.Lock()
        self.purchases: list[dict[str, Any]] = []
        self.slow_ms = 0
        self.balance_broken = False

    def restart(self) -> None:
        """Counters from zero, as after `docker compose restart api`."""
        self.metrics = Metrics()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        status, document, content_type = self.route(environ)
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        start_response(
            f"{status} Status", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        )
        return [body]

    def route(self, environ: dict[str, Any]) -> tuple[int, Any, str]:
        path = environ["RAW_URI"].split("?", 1)[0]  # as sent: %2F stays %2F
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            bearer = environ.get("HTTP_AUTHORIZATION") == f"Bearer {METRICS_TOKEN}"  # Prometheus' scrapes
            if environ.get("HTTP_X_METRICS_TOKEN") != METRICS_TOKEN and not bearer:
                return 401, {"error": "token"}, "application/json"
            return 200, generate_latest(self.metrics.registry), "text/plain; version=0.0.4"
        if not path.startswith("/api/integrations/"):
            return 404, {"error": "not found"}, "application/json"
        if environ.get("HTTP_X_API_KEY") != API_KEY:
            return 401, {"error": "bad api key"}, "application/json"
        time.sleep(self.slow_ms / 1000)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path == "/api/integrations/code" and method == "POST":
            if json.loads(body or b"{}").get("user_token") != USER_TOKEN:
                return 403, {"error": "bad user token"}, "application/json"
            return 200, {"customer": {"id": CUSTOMER_ID, "phone": "+70000000000"}}, "application/json"
        quoted = CUSTOMER_ID.replace("/", "%2F").replace(" ", "%20")
        if path == f"/api/integrations/customers/{quoted}/balance" and method == "GET":
            if self.balance_broken:
                return 500, {"error": "db"}, "application/json"
            return 200, {"balance": 120, "currency": "points"}, "application/json"
        if path == "/api/integrations/purchases" and method == "POST":
            order = json.loads(body or b"{}")
            with self.lock:
                self.purchases.append(order)
            return 201, {"id": f"p{len(self.purchases)}", "earned": 5}, "application/json"
        return 404, {"error": f"no route {method} {path}"}, "application/json"


class RawPathHandler(QuietHandler):
    """Passes the request target as sent (RAW_URI), which PATH_INFO gives only unquoted."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["RAW_URI"] = self.path
        return environ


def serve(app: LoyaltyApp) -> Iterator[str]:
    """Serve `app` on a loopback port while the generator runs; yields the base URL."""
    yield from map_app.serve(app, handler_class=RawPathHandler)
