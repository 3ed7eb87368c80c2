"""Stand-in for Map v12's `web`: a real Flask app under gunicorn, as the runbook describes it.

What the runbook observes from outside is real here: `/health` runs SELECT 1, `/ready` asks
PostgreSQL and Redis (503 when one fails), `/metrics` is prometheus_client's text, localhost
only unless METRICS_ALLOW_PUBLIC=1 or the X-API-KEY header carries METRICS_API_KEY, `/login`
is limited by Flask-Limiter (a moving window in Redis, in memory when Redis is away), and the
chat and device lists page as the runbook says. Without SECRET_KEY the app refuses to start,
so gunicorn fails to boot, as in the runbook's first incident. Configuration is the
environment only (the compose file passes `.env`); there is no lab-only fault knob.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import redis
from flask import Flask, Response, g, jsonify, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import check_password_hash

log = logging.getLogger("map.web")
LOCAL_ADDRESSES = {"127.0.0.1", "::1"}
REQUESTS = Counter("http_requests", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to answer", ["endpoint"])


def flag(name: str, default: str = "0") -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def number(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


POOL_SIZE = 16  # gunicorn's threads: one connection each at most
_idle: list[Any] = []
_idle_lock = threading.Lock()


def _checkout() -> Any:
    """An idle connection that still answers (pre-ping), else a new one.

    A connection per request forked a PostgreSQL backend for every /health: under 20
    concurrent requests on a busy machine the connects outlived their timeout and a healthy
    app answered 503. Kept connections are pinged first, so a restarted db costs nothing.
    """
    while True:
        with _idle_lock:
            connection = _idle.pop() if _idle else None
        if connection is None:
            return psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=2)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return connection
        except psycopg2.Error:
            connection.close()


@contextmanager
def database() -> Iterator[Any]:
    """A kept connection's cursor in one transaction; a dead db shows on the next request."""
    connection = _checkout()
    reusable = False
    try:
        with connection, connection.cursor() as cursor:
            yield cursor
        reusable = not connection.closed
    finally:
        with _idle_lock:
            keep = reusable and len(_idle) < POOL_SIZE
            if keep:
                _idle.append(connection)
        if not keep:
            connection.close()


def redis_client() -> redis.Redis | None:
    url = os.environ.get("REDIS_URL")
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None


def create_app() -> Flask:
    secret = os.environ.get("SECRET_KEY", "")
    if not secret:
        raise RuntimeError("SECRET_KEY is not set: refusing to start (see .env)")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_SECURE=flag("SESSION_COOKIE_SECURE"),
        SESSION_COOKIE_HTTPONLY=True,
        RATELIMIT_ENABLED=flag("RATE_LIMIT_ENABLED", "1"),
    )
    # nginx sets X-Forwarded-For to the client's address: the limiter counts per client.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=os.environ.get("REDIS_URL") or "memory://",
        storage_options={"socket_connect_timeout": 2, "socket_timeout": 2},
        strategy="moving-window",
        in_memory_fallback_enabled=True,
        key_prefix="map-v12",
    )
    # Decorated views hold the limiter weakly; disabled, Flask-Limiter does not keep it either.
    app.extensions["map-v12-limiter"] = limiter
    register_metrics(app)
    register_health(app)
    register_login(app, limiter)
    register_api(app, limiter)
    return app


def register_metrics(app: Flask) -> None:
    @app.before_request
    def started() -> None:
        g.started = time.monotonic()

    @app.after_request
    def counted(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(time.monotonic() - g.get("started", time.monotonic()))
        return response

    @app.get("/metrics")
    def metrics() -> Response | tuple[Response, int]:
        if not flag("ENABLE_METRICS", "1"):
            return jsonify(error="not found"), 404
        key = os.environ.get("METRICS_API_KEY", "")
        allowed = (
            flag("METRICS_ALLOW_PUBLIC")
            or request.remote_addr in LOCAL_ADDRESSES
            or bool(key and secrets.compare_digest(request.headers.get("X-API-KEY", ""), key))
        )
        if not allowed:
            return jsonify(error="not found"), 404
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def register_health(app: Flask) -> None:
    def db_state() -> str:
        try:
            with database() as cursor:
                cursor.execute("SELECT 1")
                return "ok"
        except psycopg2.Error as exc:
            log.error("db check failed: %s", str(exc).strip())
            return "error"

    def redis_state() -> str | None:
        client = redis_client()
        if client is None:
            return None
        try:
            client.ping()
            return "ok"
        except redis.RedisError as exc:
            log.error("redis check failed: %s", exc)
            return "error"

    @app.get("/health")
    def health() -> tuple[Response, int]:
        db = db_state()
        return jsonify(status="ok" if db == "ok" else "error", db=db), 200 if db == "ok" else 503

    @app.get("/ready")
    def ready() -> tuple[Response, int]:
        components = {"db": db_state()}
        redis_now = redis_state()
        if redis_now is not None:
            components["redis"] = redis_now
        ok = all(state == "ok" for state in components.values())
        return jsonify(status="ready" if ok else "not ready", components=components), 200 if ok else 503


def register_login(app: Flask, limiter: Limiter) -> None:
    login_limit = f"{number('RATE_LIMIT_LOGIN_PER_MINUTE', 10)}/minute"

    @app.get("/login")
    def login_form() -> Response:
        session.setdefault("csrf", secrets.token_hex(16))
        return Response(
            '<form method="post"><input name="username"><input name="password" type="password"></form>',
            mimetype="text/html",
        )

    @app.post("/login")
    @limiter.limit(login_limit)
    def login() -> tuple[Response, int]:
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        with database() as cursor:
            cursor.execute("SELECT password_hash, role FROM admin_users WHERE username = %s", (username,))
            row = cursor.fetchone()
        if row is None or not check_password_hash(row[0], password):
            log.warning("failed login for %r from %s", username, request.remote_addr)
            return jsonify(error="invalid credentials"), 401
        session["user"], session["role"] = username, row[1]
        with database() as cursor:
            cursor.execute(
                "INSERT INTO admin_audit_log (actor, action, details) VALUES (%s, 'login', '')", (username,)
            )
        return jsonify(status="ok"), 200


def page_arguments(default_limit: int) -> tuple[int, int]:
    limit = max(1, min(request.args.get("limit", default_limit, type=int) or default_limit, 100_000))
    return limit, max(0, request.args.get("offset", 0, type=int) or 0)


def register_api(app: Flask, limiter: Limiter) -> None:
    chat_limit = f"{number('RATE_LIMIT_CHAT_PER_MINUTE', 120)}/minute"

    @app.get("/api/chat/<int:user_id>")
    @limiter.limit(chat_limit)
    def chat(user_id: int) -> Response:
        """The last CHAT_DEFAULT_LIMIT messages (500) unless limit/offset/tail say otherwise."""
        limit, offset = page_arguments(number("CHAT_DEFAULT_LIMIT", 500))
        with database() as cursor:
            cursor.execute(
                "SELECT id, text, created_at FROM chat_messages WHERE user_id = %s "
                "ORDER BY id DESC LIMIT %s OFFSET %s",
                (user_id, limit, offset),
            )
            rows = cursor.fetchall()
        messages = [{"id": row[0], "text": row[1], "at": row[2].isoformat()} for row in reversed(rows)]
        return jsonify(user_id=user_id, messages=messages)

    @app.get("/api/tracker/admin/devices")
    def devices() -> Response:
        limit, offset = page_arguments(50)
        with database() as cursor:
            cursor.execute("SELECT count(*) FROM tracker_devices")
            total = cursor.fetchone()[0]
            cursor.execute(
                "SELECT id, name FROM tracker_devices ORDER BY id LIMIT %s OFFSET %s", (limit, offset)
            )
            items = [{"id": row[0], "name": row[1]} for row in cursor.fetchall()]
        return jsonify(items=items, total=total, has_more=offset + len(items) < total)

    @app.get("/api/markers")
    def markers() -> Response:
        with database() as cursor:
            cursor.execute("SELECT id, title, lat, lon FROM markers ORDER BY created_at DESC LIMIT 100")
            rows = cursor.fetchall()
        return jsonify(markers=[{"id": r[0], "title": r[1], "lat": r[2], "lon": r[3]} for r in rows])

    @app.get("/api/audit")
    def audit() -> tuple[Response, int]:
        """Superadmin only (runbook: Admin audit)."""
        if "user" not in session:
            return jsonify(error="login required"), 401
        if session.get("role") != "superadmin":
            return jsonify(error="superadmin only"), 403
        limit, offset = page_arguments(200)
        where, values = [], []
        for name in ("action", "actor"):
            if request.args.get(name):
                where.append(f"{name} = %s")
                values.append(request.args[name])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with database() as cursor:
            cursor.execute(
                f"SELECT id, actor, action, created_at FROM admin_audit_log {clause} "
                "ORDER BY id DESC LIMIT %s OFFSET %s",
                (*values, limit, offset),
            )
            rows = cursor.fetchall()
        entries = [{"id": r[0], "actor": r[1], "action": r[2], "at": r[3].isoformat()} for r in rows]
        return jsonify(entries=entries), 200

    @app.get("/api/bot/ping")
    def bot_ping() -> tuple[Response, int]:
        """bot -> server calls carry BOT_API_KEY (runbook incident 4)."""
        key = os.environ.get("BOT_API_KEY", "")
        if key and not secrets.compare_digest(request.headers.get("X-Bot-Api-Key", ""), key):
            log.warning("bot call with a wrong BOT_API_KEY from %s", request.remote_addr)
            return jsonify(error="unauthorized"), 401
        return jsonify(status="ok"), 200


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
