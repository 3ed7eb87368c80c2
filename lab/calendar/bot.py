"""Stand-in for the AI Calendar Assistant bot (FastAPI + aiogram in production).

Runs in the lab's `telegram-bot` container under the host's /usr/bin/python3, stdlib only.
It reproduces what the runbook observes from outside: GET /health on :8000, Python-logging
lines on stdout (including aiogram's "Start polling"), and a SQLite DB in WAL mode that is
written all the time, so a second instance really hits "database is locked".

Like the real bot it keeps its settings in /var/lib/calendar-bot (the bot-data volume) and
uses Redis: when calendar-redis stays unreachable (three probes, 10 s apart) it logs the
runbook's `redis.exceptions.ConnectionError` (§3.4), once a minute while it lasts.

Lab-only fault knob: the file /app/data/.lab-fault, polled every 0.5 s, holding one of
`unhealthy`, `slow` (health answers 503 / after 8 s), `errors`, `oom`, `radicale-refused`
(CalDAV calls refused, §3.5) (one-shot: the file is consumed) or `crash` (read at start: the
process fails, so docker restarts it in a loop).
Health never depends on Redis or Radicale, so each fault stays isolated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import random
import signal
import socket
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "2.4.1"
DATA_DIR = os.environ.get("BOT_DATA_DIR", "/app/data")
STATE_DIR = "/var/lib/calendar-bot"  # the bot-data volume: settings, analytics, reminders
REDIS_PROBE_EVERY_S = 5.0
REDIS_FAILURES_BEFORE_LOG = 2
DB_PATH = os.path.join(DATA_DIR, "calendar.db")
CONTROL = os.path.join(DATA_DIR, ".lab-fault")
PORT = int(os.environ.get("PORT", "8000"))
# One heartbeat transaction holds the write lock this long, with this busy timeout: alone
# the bot never waits, but two instances collide within seconds (the runbook's §3.1).
LOCK_HOLD_S = 2.0
BUSY_TIMEOUT_S = 0.5
LOCK_LOG_EVERY_S = 60.0
REQUIRED_ENV = ("TELEGRAM_BOT_TOKEN", "YANDEX_GPT_API_KEY", "YANDEX_GPT_FOLDER_ID")

logging.basicConfig(
    level=logging.INFO,
    format="%(asctime)s - %(name)s - %(levelname)s - %(message)s",
    stream=sys.stdout,
)
log_main = logging.getLogger("app.main")
log_db = logging.getLogger("app.services.storage")
log_api = logging.getLogger("uvicorn.access")
log_poll = logging.getLogger("aiogram.dispatcher")
log_gpt = logging.getLogger("app.services.yandex_gpt")
log_redis = logging.getLogger("app.services.reminders")
log_caldav = logging.getLogger("app.services.calendar")

stop = threading.Event()
mode = {"health": ""}  # "", "unhealthy" or "slow"; set by the control poller


def read_control() -> str:
    try:
        with open(CONTROL) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def consume_control() -> None:
    with contextlib.suppress(OSError):
        os.unlink(CONTROL)


class StorageError(RuntimeError):
    """Raised at start when the lab asks the bot to crash."""


def open_storage() -> None:
    raise StorageError(f"cannot open {DB_PATH}: schema migration 0042_reminders failed")


def crash() -> None:
    """Fail at start-up like a broken release: a traceback, exit status 1."""
    log_main.info("Starting AI Calendar Assistant v%s", VERSION)
    try:
        open_storage()
    except StorageError:
        log_main.exception("Fatal error during start-up, exiting")
    sys.exit(1)


def init_db() -> None:
    """Create the DB once, in WAL mode; the mode is never re-set, so switching it sticks."""
    new = not os.path.exists(DB_PATH)
    conn = sqlite3.connect(DB_PATH, timeout=10)
    try:
        if new:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS users (
                id INTEGER PRIMARY KEY, telegram_id INTEGER UNIQUE, name TEXT, tz TEXT,
                created_at TEXT);
            CREATE TABLE IF NOT EXISTS reminders (
                id INTEGER PRIMARY KEY, user_id INTEGER, text TEXT, due_at TEXT, sent INTEGER);
            CREATE TABLE IF NOT EXISTS analytics (
                id INTEGER PRIMARY KEY, event TEXT, user_id INTEGER, at TEXT);
            CREATE TABLE IF NOT EXISTS heartbeat (
                id INTEGER PRIMARY KEY, instance TEXT, at TEXT);
            """
        )
        if new:
            now = dt.datetime.now(dt.UTC)
            users = [(1000 + i, f"user{i}", "Europe/Moscow", now.isoformat()) for i in range(40)]
            conn.executemany(
                "INSERT OR IGNORE INTO users (telegram_id, name, tz, created_at) VALUES (?,?,?,?)", users
            )
            texts = ["Standup", "Dentist", "Call mom", "Pay rent", "Gym", "Sprint review"]
            conn.executemany(
                "INSERT INTO reminders (user_id, text, due_at, sent) VALUES (?,?,?,0)",
                [
                    (1 + i % 40, random.choice(texts), (now + dt.timedelta(hours=i)).isoformat())
                    for i in range(200)
                ],
            )
            conn.commit()
        mode_now = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    log_db.info("SQLite storage ready at %s (journal_mode=%s)", DB_PATH, mode_now)


def heartbeat_loop() -> None:
    """Open-write-close every ~1-3 s, holding the write lock LOCK_HOLD_S like a long job."""
    instance = socket.gethostname()
    last_logged = 0.0
    while not stop.is_set():
        try:
            conn = sqlite3.connect(DB_PATH, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                conn.execute("BEGIN EXCLUSIVE")
                now = dt.datetime.now(dt.UTC).isoformat()
                conn.execute("INSERT INTO heartbeat (instance, at) VALUES (?, ?)", (instance, now))
                conn.execute("INSERT INTO analytics (event, user_id, at) VALUES ('tick', 0, ?)", (now,))
                conn.execute("DELETE FROM heartbeat WHERE id < (SELECT MAX(id) - 500 FROM heartbeat)")
                conn.execute("DELETE FROM analytics WHERE id < (SELECT MAX(id) - 500 FROM analytics)")
                stop.wait(LOCK_HOLD_S)
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if time.monotonic() - last_logged >= LOCK_LOG_EVERY_S:
                last_logged = time.monotonic()
                log_db.error("Failed to save reminder queue: sqlite3.OperationalError: %s", exc)
        stop.wait(random.uniform(0.5, 1.5))


def error_burst() -> None:
    """What a bad night looks like in the log: 30 lines an operator's grep will count."""
    for i in range(12):
        log_main.error("Failed to process update %d: TelegramNetworkError: request timeout", 7310 + i)
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as inner:
            raise RuntimeError("YandexGPT API error: upstream connection lost") from inner
    except RuntimeError:
        log_gpt.exception("Unhandled exception while parsing message")
    for i in range(8):
        log_gpt.error("YandexGPT API error: 500 Internal Server Error (attempt %d/8)", i + 1)
    for _ in range(4):
        log_main.critical("Reminder scheduler stopped: too many consecutive failures")


def radicale_refused() -> None:
    """What the bot logs when Radicale refuses its CalDAV calls (runbook 3.5)."""
    for path in ("/demo/calendar/", "/user17/calendar/", "/user3/calendar/"):
        log_caldav.error(
            "Failed to save event: requests.exceptions.ConnectionError: HTTPConnectionPool(host='radicale', "
            "port=5232): Max retries exceeded with url: %s (Caused by NewConnectionError("
            "'<urllib3.connection.HTTPConnection object>: Failed to establish a new connection: "
            "[Errno 111] Connection refused'))",
            path,
        )


def redis_address() -> tuple[str, int]:
    url = os.environ.get("REDIS_URL", "redis://calendar-redis:6379").split("://", 1)[-1]
    host, _, port = url.split("/", 1)[0].rpartition(":")
    return (host or "calendar-redis"), int(port or 6379)


def redis_loop() -> None:
    """Probe Redis like the reminder queue does; log its ConnectionError when it stays down."""
    host, port = redis_address()
    failures = 0
    while not stop.wait(REDIS_PROBE_EVERY_S):
        try:
            socket.create_connection((host, port), timeout=2).close()
            failures = 0
        except OSError as exc:
            failures += 1
            if failures >= REDIS_FAILURES_BEFORE_LOG and (failures - REDIS_FAILURES_BEFORE_LOG) % 12 == 0:
                log_redis.error(
                    "Reminder queue unavailable: redis.exceptions.ConnectionError: "
                    "Error %s connecting to %s:%s. %s.",
                    exc.errno,
                    host,
                    port,
                    exc.strerror or exc,
                )


def write_settings() -> None:
    """The bot's own data in its volume, as the runbook's backup (4.2) expects it there."""
    os.makedirs(STATE_DIR, exist_ok=True)
    settings = os.path.join(STATE_DIR, "settings.json")
    if not os.path.exists(settings):
        with open(settings, "w") as fh:
            json.dump({"default_timezone": "Europe/Moscow", "reminder_lead_minutes": 15}, fh)


def eat_memory() -> None:
    """Grow until the container's memory limit makes the kernel kill us (exit 137)."""
    log_main.warning("Reminder cache rebuild started, loading all events into memory")
    hog = []
    while True:
        hog.append(b"\x01" * (32 << 20))


held: list[bytes] = []


def hold_memory() -> None:
    """Grow to ~850 MB and stay there: 83% of the 1g limit, under the OOM line (runbook 3.3)."""
    log_main.warning("Reminder cache rebuild started, loading all events into memory")
    while len(held) < 850 // 32:
        held.append(b"\x01" * (32 << 20))


def control_loop() -> None:
    while not stop.is_set():
        value = read_control()
        if value in ("unhealthy", "slow", ""):
            mode["health"] = value
        elif value == "errors":
            consume_control()
            error_burst()
        elif value == "radicale-refused":
            consume_control()
            radicale_refused()
        elif value == "oom":
            consume_control()
            eat_memory()
        elif value == "memory-high":
            consume_control()
            hold_memory()
        stop.wait(0.5)


class Handler(BaseHTTPRequestHandler):
    server_version = "uvicorn"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/health":
            self._send(404, {"detail": "Not Found"})
            return
        state = mode["health"]
        if state == "slow":
            time.sleep(8)
        status = "unhealthy" if state == "unhealthy" else "healthy"
        body = {
            "status": status,
            "version": VERSION,
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        }
        self._send(503 if status == "unhealthy" else 200, body)

    def _send(self, code: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: object) -> None:
        log_api.info(
            '%s - "%s %s HTTP/1.1" %s',
            self.client_address[0],
            self.command,
            self.path,
            args[1] if len(args) > 1 else "-",
        )


def main() -> None:
    if read_control() == "crash":
        crash()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log_main.info("Starting AI Calendar Assistant v%s", VERSION)
    missing = [k for k in REQUIRED_ENV if not os.environ.get(k)]
    if missing:
        log_gpt.warning("%s not set: AI parsing of messages is disabled", ", ".join(missing))
    log_main.info(
        "Redis: %s, CalDAV: %s", os.environ.get("REDIS_URL", "-"), os.environ.get("RADICALE_URL", "-")
    )
    init_db()
    write_settings()
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    logging.getLogger("uvicorn").info("Uvicorn running on http://0.0.0.0:%d (Press CTRL+C to quit)", PORT)
    threading.Thread(target=control_loop, daemon=True).start()
    threading.Thread(target=heartbeat_loop, daemon=True).start()
    threading.Thread(target=redis_loop, daemon=True).start()
    if read_control() == "webhook":
        # Configured for a webhook nobody set: the bot never polls (runbook 3.2).
        log_main.info("Telegram updates via webhook https://calendar.example.com/webhook")
        stop.wait()
        server.shutdown()
        return
    log_poll.info("Start polling")
    bot_id = int.from_bytes(os.environ.get("TELEGRAM_BOT_TOKEN", "x").encode()[-4:], "big")
    log_poll.info("Run polling for bot @ai_calendar_assistant_bot id=%d - 'AI Calendar Assistant'", bot_id)
    stop.wait()
    log_poll.info("Polling stopped")
    server.shutdown()
    log_main.info("Shutdown complete")


if __name__ == "__main__":
    main()
