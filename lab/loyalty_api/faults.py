"""The failures of the Loyalty API runbook, each made the way it happens in production.

Containers are stopped or recreated from a changed .env.production (as `docker compose up -d`
after an edit); 5xx and slow requests come from real lock waits in PostgreSQL while real
requests arrive; the outbox faults add real events and let the real worker fail to deliver
them (the merchant's endpoint answers 429 or 500, or the event's URL refuses connections);
migration faults lay a folder or a row; dump faults age, corrupt or cut the newest dump. Rate
faults return once Prometheus has scraped what they caused. Check ids are
systems/lab/loyalty-api.yml's.
"""

from __future__ import annotations

import gzip
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

import docker

from lab import containers
from lab.core import Fault, LabError, fault, wait_until, write_file
from lab.loyalty_api import system as loyalty

API, WORKER, POSTGRES, REDIS = loyalty.API, loyalty.WORKER, loyalty.POSTGRES, loyalty.REDIS
# Heal rebuilds Prometheus (an empty TSDB) after faults whose burst would stay in its 10 min window.
PROMETHEUS = loyalty.PROMETHEUS
API_AND_METRICS = {API, PROMETHEUS}
API_DOWN = {"api-running", "health", "ready", "live", "metrics-access", "metrics-present",
            "smoke-check", "smoke-integrations", "prisma-migrations"}  # fmt: skip


def with_client(action: Callable[[docker.DockerClient], None]) -> None:
    with loyalty.SERVER.dockerd.session() as client:
        action(client)


def stop(name: str) -> None:
    with_client(lambda client: containers.existing_container(client, name).stop(timeout=5))


def recreate_from_env(key: str, value: str | None, name: str) -> None:
    """Edit .env.production and recreate `name` from it, as `docker compose up -d` does."""
    loyalty.set_env_value(key, value)

    def apply(client: docker.DockerClient) -> None:
        containers.remove_container(client, name)
        containers.create_container(client, loyalty.specs()[name])

    with_client(apply)
    if name == API:
        wait_until(lambda: answers("/health"), timeout=30, what=f"{API} to answer again")


def answers(path: str) -> bool:
    try:
        loyalty.fetch(path, 2)
    except OSError:
        return False
    return True


def psql(sql: str) -> str:
    with loyalty.SERVER.dockerd.session() as client:
        return loyalty.psql(client, sql)


def lock_customers(seconds: float) -> threading.Thread:
    """A transaction holding customers exclusively (a long migration, a stuck batch job)."""
    sql = f"BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"
    thread = threading.Thread(target=psql, args=(sql,), daemon=True)
    thread.start()
    wait_until(
        lambda: psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                     "WHERE c.relname = 'customers' AND l.mode = 'AccessExclusiveLock' AND l.granted") != "0",
        timeout=10, what="the lock on customers", interval=0.05,
    )  # fmt: skip
    return thread


def integration_get(path: str) -> int:
    key = loyalty.lab_secrets()["INTEGRATION_API_KEY"]
    request = urllib.request.Request(loyalty.BASE_URL + path, headers={"X-Api-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):  # refused or timed out (the api is down): no answer
        return 0


def at_once(count: int, path: str) -> list[int]:
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(integration_get(path))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def prometheus_sees(query: str, at_least: float) -> None:
    """Until Prometheus' answer reaches `at_least`. Counters outlive heal (they are rows), so a
    counter's condition is on its increase, never on its total."""
    wait_until(
        lambda: (loyalty.prometheus_value(query) or 0) >= at_least,
        timeout=40,
        what=f"Prometheus to see {query} >= {at_least:g}",
        interval=1,
    )


def add_events(count: int, url: str = "http://merchant:8080/webhooks/loyalty") -> None:
    psql(
        f"INSERT INTO outbox (url, payload) SELECT '{url}', "
        f"jsonb_build_object('event', 'purchase.created', 'n', n) FROM generate_series(1, {count}) AS n"
    )


def merchant_answers(mode: str) -> None:
    """The merchant stand-in answers one way at a time: a second fault's answer written over a
    first's would end the first (429s replaced by 500s), so that pair is refused, not faked."""
    path = loyalty.PATHS.merchant / "mode"
    current = path.read_text().strip() if path.exists() else "ok"
    if current not in {"ok", mode}:
        raise LabError(f"the merchant stand-in already answers {current!r}; {mode!r} would end it")
    write_file(path, f"{mode}\n")


# ---- the injections -------------------------------------------------------------------
def api_down() -> None:
    stop(API)


def api_crash_loop() -> None:
    """A release's .env.production lost DATABASE_URL: the api exits 1 at start and docker's
    restart policy (unless-stopped) starts it again and again (runbook 76: «API падает на старте»)."""
    loyalty.set_env_value("DATABASE_URL", None)

    def apply(client: docker.DockerClient) -> None:
        containers.remove_container(client, API)
        containers.create_container(client, loyalty.specs()[API])

    with_client(apply)
    containers.wait_restarted(loyalty.SERVER.dockerd, API, 2)


def http_5xx_burst() -> None:
    """Balance lookups give up after 150 ms behind a lock: 40 answers 500, none of them slow."""
    holder = lock_customers(3)
    statuses = at_once(40, "/api/integrations/customers/1/balance")
    holder.join()
    assert statuses.count(500) >= 30, statuses
    prometheus_sees('sum(increase(http_requests_total{status=~"5.."}[10m]))', 30)


def slow_requests() -> None:
    """History lookups wait behind a lock for over 1000 ms each (ALERT_HTTP_SLOW_THRESHOLD_MS)."""
    holder = lock_customers(3)
    at_once(15, "/api/integrations/customers/1/history")
    holder.join()
    prometheus_sees("sum(increase(http_slow_requests_total[10m]))", 12)


def db_down() -> None:
    """`docker compose stop postgres` as the postgres image has it: STOPSIGNAL SIGINT, a fast
    shutdown that ends the sessions at once. SIGTERM's smart shutdown would wait on the worker's
    connection while every connection tried meanwhile logs a FATAL, as many as the machine's
    timing gives: postgres-fatal (at most 5 an hour) would pass or fail by chance."""

    def fast_shutdown(client: docker.DockerClient) -> None:
        container = containers.existing_container(client, POSTGRES)
        container.kill(signal="SIGINT")
        container.wait(timeout=30)

    with_client(fast_shutdown)


def db_auth_failures() -> None:
    """A client with a stale password hammers the database: FATAL lines in postgres' log."""

    def attempts(client: docker.DockerClient) -> None:
        for _ in range(8):
            code, _ = containers.exec_output(
                client,
                POSTGRES,
                ["psql", "postgresql://loyalty:stale-password@127.0.0.1:5432/loyalty", "-c", "SELECT 1"],
            )
            if code == -1:  # not running: no login can fail, nothing reaches its log
                raise LabError(f"{POSTGRES} is not running: no login can fail in its log")

    with_client(attempts)


def redis_down() -> None:
    stop(REDIS)


def workers_disabled() -> None:
    recreate_from_env("WORKERS_ENABLED", "0", WORKER)
    add_events(12)
    prometheus_sees("loyalty_outbox_pending", 12)


def outbox_dead_rising() -> None:
    """Events for a merchant whose endpoint refuses connections: 3 attempts each, then dead."""
    add_events(8, url="http://merchant:9/webhooks/loyalty")
    prometheus_sees("sum(loyalty_outbox_dead_total)", 8)


def external_429_storm() -> None:
    merchant_answers("429")
    add_events(12)
    prometheus_sees('sum(increase(external_requests_total{result="rate_limited"}[10m]))', 10)
    prometheus_sees("loyalty_outbox_pending", 12)  # held back, not lost: the queue grows


def external_http_error() -> None:
    """The merchant's handler fails: one event, three attempts answered 500, then dead (under the delta)."""
    merchant_answers("500")
    add_events(1)
    prometheus_sees('sum(increase(external_requests_total{result="http_error"}[10m]))', 2.5)


def migration_pending() -> None:
    """A release shipped a migration nobody applied (`prisma migrate deploy` skipped)."""
    folder = loyalty.PATHS.app / "prisma" / "migrations" / "20240701000000_loyalty_tiers"
    write_file(folder / "migration.sql", "ALTER TABLE customers ADD COLUMN tier TEXT;\n")


def migration_failed() -> None:
    psql(
        "INSERT INTO _prisma_migrations "
        "(id, checksum, migration_name, logs, started_at, applied_steps_count) "
        "VALUES (gen_random_uuid()::text, repeat('0', 64), '20240620000000_backfill_tiers', "
        "'ERROR: column \"tier\" does not exist', now(), 0)"
    )


def maintenance_mode() -> None:
    recreate_from_env("MAINTENANCE_MODE", "1", API)


def read_only_mode() -> None:
    recreate_from_env("READ_ONLY_MODE", "1", API)


def notify_token_missing() -> None:
    recreate_from_env("TELEGRAM_NOTIFY_BOT_TOKEN", None, API)


def metrics_token_wrong() -> None:
    """The api's METRICS_TOKEN rotated on the server; the scrapers still send the old one."""
    recreate_from_env("METRICS_TOKEN", "rotated-" + os.urandom(8).hex(), API)


def newest_dump() -> str:
    return str(loyalty.dumps()[-1])


def dump_stale() -> None:
    for path in loyalty.dumps():
        loyalty.SERVER.ssh(f"touch -d '30 hours ago' {path}")


def dump_corrupt() -> None:
    """Bytes in the middle of the gzip stream overwritten (a disk or a copy gone wrong)."""
    path = loyalty.dumps()[-1]
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


def dump_truncated() -> None:
    """pg_dump died half way (disk full, OOM): gzip whole, the SQL cut short."""
    path = loyalty.dumps()[-1]
    text = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(text[: len(text) // 2]))


def alert_chat_missing() -> None:
    """ALERT_TELEGRAM_CHAT_ID dropped from .env.production: Telegram alerts go nowhere."""
    recreate_from_env("ALERT_TELEGRAM_CHAT_ID", None, API)


# Damaging the newest dump writes it anew: its time is now, so it is no longer stale.
REWRITTEN = "it rewrites the newest dump now: the newest is no longer stale"
FAULTS: list[Fault] = [
    fault("api-down", "the api container stopped", fails=API_DOWN, inject=api_down, recreate=API_AND_METRICS),
    fault("api-crash-loop", "DATABASE_URL gone from .env.production: the api exits at start, restarted",
          fails={"api-restarts", *API_DOWN - {"prisma-migrations"}},
          # it lists the migrations inside the api: a look that lands in one of the loop's moments
          # of running finds them all applied (CI saw it green once); api-running is the red one
          may_fail={"prisma-migrations"},
          inject=api_crash_loop, recreate=API_AND_METRICS),
    fault("http-5xx-burst", "40 requests answered 500 (statement timeout behind a lock)",
          fails={"http-5xx-rate"}, inject=http_5xx_burst, recreate=API_AND_METRICS),
    fault("slow-requests", "15 requests over ALERT_HTTP_SLOW_THRESHOLD_MS (waiting on a lock)",
          fails={"http-slow-rate"}, inject=slow_requests, recreate=API_AND_METRICS),
    fault("db-down", "the postgres container stopped",
          fails={"postgres-running", "pg-isready", "ready", "db-select-one", "prisma-migrations",
                 "smoke-check", "smoke-integrations", "metrics-present"},
          # a stop writes "FATAL: terminating connection due to administrator command" for each
          # connection the api held open at that moment: real lines, as many as were open
          may_fail={"postgres-fatal"},
          inject=db_down, recreate={POSTGRES, PROMETHEUS}),
    fault("db-auth-failures", "8 logins with a stale password: FATAL lines in the postgres log",
          fails={"postgres-fatal"}, inject=db_auth_failures, recreate={POSTGRES}),
    fault("redis-down", "the redis container stopped: caches, limits and queues degrade, the API answers",
          fails={"redis-ping"}, inject=redis_down, recreate={REDIS}),
    fault("workers-disabled", "worker recreated with WORKERS_ENABLED=0: the outbox only grows",
          fails={"worker-env", "outbox-pending-growth"}, inject=workers_disabled,
          recreate={WORKER, PROMETHEUS}),
    fault("outbox-dead-rising", "8 events to an endpoint that refuses connections: dead after 3 attempts",
          fails={"outbox-dead-growth", "external-errors"}, inject=outbox_dead_rising,
          recreate={PROMETHEUS}),
    fault("external-429-storm", "the merchant's endpoint answers 429 to every delivery",
          fails={"external-rate-limited", "outbox-pending-growth"}, inject=external_429_storm,
          recreate={PROMETHEUS}),
    fault("external-http-error", "the merchant's endpoint answers 500",
          fails={"external-errors"}, inject=external_http_error, recreate={PROMETHEUS}),
    fault("migration-pending", "a shipped migration folder without its _prisma_migrations row",
          fails={"prisma-migrations"}, inject=migration_pending, recreate={API}),
    fault("migration-failed", "a failed migration's row (finished_at null) in _prisma_migrations",
          fails={"prisma-migrations"}, inject=migration_failed),
    fault("maintenance-mode", "MAINTENANCE_MODE=1 left on after an incident",
          fails={"maintenance-off", "smoke-integrations"}, inject=maintenance_mode, recreate={API}),
    fault("read-only-mode", "READ_ONLY_MODE=1 left on",
          fails={"read-only-off", "smoke-integrations"}, inject=read_only_mode, recreate={API}),
    fault("notify-token-missing", "TELEGRAM_NOTIFY_BOT_TOKEN missing from .env.production",
          fails={"notify-config"}, inject=notify_token_missing, recreate={API}),
    fault("metrics-token-wrong", "the api's METRICS_TOKEN rotated; the scrapers send the old one",
          fails={"metrics-access", "metrics-present", "smoke-check"}, inject=metrics_token_wrong,
          recreate=API_AND_METRICS),
    fault("alert-chat-missing", "ALERT_TELEGRAM_CHAT_ID missing from .env.production",
          fails={"alerts-config"}, inject=alert_chat_missing, recreate={API}),
    fault("dump-stale", "no dump for 30 hours", fails={"backup-fresh"}, inject=dump_stale),
    fault("dump-corrupt", "the newest dump's gzip stream damaged", fails={"backup-valid"},
          inject=dump_corrupt, replaces={"dump-stale": REWRITTEN}),
    fault("dump-truncated", "the newest dump cut short (no completion trailer)",
          fails={"backup-valid"}, inject=dump_truncated, replaces={"dump-stale": REWRITTEN}),
]  # fmt: skip
