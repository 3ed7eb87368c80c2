"""The failures runbook map-v12.md names, each injected into the lab by real means.

Containers are stopped, paused or recreated from a changed `.env` (as `docker compose up -d`
would), a release's new migration is laid without `alembic upgrade`, Redis drops the worker's
subscription, dumps are truncated, aged or missing off the host, and rows are added to the
live database. Every inject returns only once the failure is observable from outside;
`fails` is the prediction of which checks go red; heal undoes all (system.converge).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections.abc import Callable

from lab import containers
from lab.core import Fault, LabError, fault, wait_until
from lab.map_v12 import system as lab_map
from lab.map_v12.system import BOOK, BOT, DB, PATHS, REDIS, WEB, WORKER

# Everything a client asks through nginx, and what is looked at inside web: red while web
# does not answer (stopped, failing to boot, hung).
THROUGH_NGINX = frozenset(
    {
        "health",
        "ready",
        "chat-page",
        "devices-page",
        "metrics-not-public",
        "metrics-api-key",
        "audit-superadmin-only",
        "login-rate-limit",
        "chat-rate-limit",
        "perf-sanity",
    }
)
INSIDE_WEB = frozenset({"metrics-local", "db-migrations"})
DB_GONE = frozenset(
    {
        "db-running",
        "db-select-one",
        "db-migrations",
        "audit-table",
        "restore-test",
        "health",
        "ready",
        "chat-page",
        "devices-page",
        "perf-sanity",
        # /login and the chat answer 500 without the database: a failing endpoint's limit
        # cannot be judged
        "login-rate-limit",
        "chat-rate-limit",
    }
)


def _stop(name: str) -> None:
    with lab_map.SERVER.dockerd.session() as client:
        containers.stop_and_wait(client, name)


def _redeploy(env_key: str, value: str | None, *, env_file: str = "server") -> None:
    """Change one key of an env file and `docker compose up -d`: the changed services are recreated."""
    path = PATHS.env if env_file == "server" else PATHS.bot_env
    lab_map.set_env_value(path, env_key, value)
    with lab_map.SERVER.dockerd.session() as client:
        containers.reconcile(client, lab_map.specs().values(), strict=False)


def _status(path: str) -> int:
    try:
        return lab_map.fetch(path, timeout=8)[0]
    except OSError:
        return 0


def _web_answers() -> bool:
    return _status("/health") == 200


def web_down() -> None:
    _stop(WEB)
    wait_until(lambda: _status("/health") == 502, timeout=20, what="nginx to answer 502")


def missing_secret_key() -> None:
    """SECRET_KEY dropped from .env, web recreated: the app refuses to start, gunicorn exits 3."""
    _redeploy("SECRET_KEY", None)

    def restarting_in_a_loop() -> bool:
        with lab_map.SERVER.dockerd.session() as client:
            web = containers.inspect(client, WEB)
        return web["RestartCount"] >= 6 and web["State"]["Restarting"]

    # Six restarts in, docker's back-off (100 ms doubling) keeps web "restarting" for 6 s and
    # more at a time, so the checklist sees it down as `docker ps` would.
    wait_until(restarting_in_a_loop, timeout=60, what="web to restart in a loop")
    wait_until(lambda: _status("/health") == 502, timeout=10, what="nginx to answer 502")


def web_hung() -> None:
    """web stops answering but keeps its port open (docker pause): nginx times out, 504."""
    with lab_map.SERVER.dockerd.session() as client:
        containers.existing_container(client, WEB).pause()
    wait_until(lambda: _status("/health") == 504, timeout=20, what="nginx to answer 504")


def db_down() -> None:
    _stop(DB)
    wait_until(lambda: _status("/ready") == 503, timeout=20, what="/ready to answer 503 (db=error)")


def redis_down() -> None:
    _stop(REDIS)
    wait_until(lambda: _status("/ready") == 503, timeout=20, what="/ready to answer 503 (redis=error)")


def worker_unsubscribed() -> None:
    """Redis drops the worker's Pub/Sub connection (a failover, a restart); it never resubscribes."""
    with lab_map.SERVER.dockerd.session() as client:
        code, output = containers.exec_output(
            client, REDIS, ["redis-cli", "CLIENT", "KILL", "TYPE", "pubsub"]
        )
        if code != 0:  # Redis stopped or broken: there is no subscription to drop
            raise LabError(f"cannot drop the worker's Pub/Sub connection: redis-cli exited {code}: {output}")
        wait_until(
            lambda: lab_map.subscribers(client) == 0, timeout=10, what=f"no subscriber on {lab_map.CHANNEL}"
        )


def migration_pending() -> None:
    """A release's new revision is deployed to web's code, `alembic upgrade head` not run."""
    shutil.copy(lab_map.HERE / "pending" / "0004_marker_status.py", PATHS.versions / "0004_marker_status.py")
    with lab_map.SERVER.dockerd.session() as client:
        wait_until(
            lambda: (
                "0004_marker_status (head)" in containers.exec_output(client, WEB, ["alembic", "heads"])[1]
            ),
            timeout=20,
            what="alembic heads in web to show 0004_marker_status",
        )


def metrics_public() -> None:
    _redeploy("METRICS_ALLOW_PUBLIC", "1")
    wait_until(lambda: _status("/metrics") == 200, timeout=60, what="/metrics open to anyone")


def metrics_key_wrong() -> None:
    """web's METRICS_API_KEY rotated in .env, the scraper's key (lab.env) left as it was."""
    _redeploy("METRICS_API_KEY", "rotated-" + os.urandom(8).hex())
    wait_until(_web_answers, timeout=60, what="web back after the redeploy")


def secret_key_placeholder() -> None:
    _redeploy("SECRET_KEY", "changeme")
    wait_until(_web_answers, timeout=60, what="web back after the redeploy")


def cookie_not_secure() -> None:
    _redeploy("SESSION_COOKIE_SECURE", "0")
    wait_until(_web_answers, timeout=60, what="web back after the redeploy")


def bot_key_mismatch() -> None:
    """The bot's BOT_API_KEY differs from the server's: its calls are refused (401)."""
    _redeploy("BOT_API_KEY", "stale-" + os.urandom(8).hex(), env_file="bot")

    def refused() -> bool:
        with lab_map.SERVER.dockerd.session() as client:
            return "call failed: HTTP 401" in containers.logs(client, BOT)

    wait_until(refused, timeout=30, what="the bot's calls to be refused")


def rate_limit_off() -> None:
    _redeploy("RATE_LIMIT_ENABLED", "0")
    wait_until(_web_answers, timeout=60, what="web back after the redeploy")


def chat_page_5000() -> None:
    """A release pages chat by 5000: /api/chat/<id> returns 5000 messages by default."""
    _redeploy("CHAT_DEFAULT_LIMIT", "5000")
    wait_until(_web_answers, timeout=60, what="web back after the redeploy")


def slow_endpoint() -> None:
    """web limited to 2% of a CPU (docker update --cpus 0.02): perf sanity's requests time out.

    Measured on the healthy lab (web keeps its db connections): 200 GETs in 0.6 s. At 5% of a
    CPU 13.6 s with p95 near the lab's 2000 ms limit, at 3% 12-24 s with p95 either side of it
    (red or not by the moment); at 2% most requests end in nginx's 504 after 3 s, and the
    check stops as soon as its errors decide.
    """
    with lab_map.SERVER.dockerd.session() as client:
        client.api.update_container(WEB, cpu_quota=2_000, cpu_period=100_000)


def scripts_writable() -> None:
    """db recreated from a compose file that mounts ./deploy read-write at /scripts."""
    spec = lab_map.specs()[DB]
    binds = [bind.removesuffix(":ro") + ":rw" if ":/scripts:" in bind else bind for bind in spec.binds]
    assert binds != spec.binds, spec.binds
    with lab_map.SERVER.dockerd.session() as client:
        containers.remove_container(client, DB)
        containers.reconcile(client, [dataclasses.replace(spec, binds=binds)], strict=False)
        wait_until(lambda: lab_map.db_answers(client), timeout=60, what=f"PostgreSQL in {DB}", interval=0.2)
    wait_until(lambda: _status("/ready") == 200, timeout=30, what="/ready to answer 200 again")


def script_missing(name: str) -> Callable[[], None]:
    """`name` gone from ./deploy (a release that dropped it): /scripts in db lacks it.

    heal lays it again (system.write_server_files)."""

    def inject() -> None:
        (PATHS.deploy / name).unlink()

    return inject


def _stash(folder: str, path: os.PathLike[str]) -> None:
    """Move a dump aside (heal moves it back)."""
    stash = PATHS.stash / folder
    stash.mkdir(parents=True, exist_ok=True)
    shutil.move(os.fspath(path), stash / os.path.basename(path))


def _place(folder: str, data: bytes, when: dt.datetime) -> None:
    """A dump named and dated like a run at `when`, booked so heal removes it."""
    target_dir = PATHS.backups if folder == "server" else PATHS.offsite
    target = target_dir / f"pgdump_{when:%Y%m%d_%H%M%S}.dump"
    target.write_bytes(data)
    os.utime(target, (when.timestamp(), when.timestamp()))
    BOOK.note(**{f"placed-{folder}": [target.name]})


def _newest_dump() -> bytes:
    dumps = lab_map.dumps(PATHS.backups)
    if not dumps:
        raise LabError(f"no dump in {PATHS.backups}")
    return dumps[-1].read_bytes()


def stale_dump() -> None:
    """The backup job stopped two days ago: the newest dump (and its copy) is 49 h old."""
    data = _newest_dump()
    for folder, directory in (("server", PATHS.backups), ("offsite", PATHS.offsite)):
        for dump in lab_map.dumps(directory):
            _stash(folder, dump)
    when = (dt.datetime.now() - dt.timedelta(hours=49)).replace(microsecond=0)
    _place("server", data, when)
    _place("offsite", data, when)


def corrupt_dump() -> None:
    """Tonight's pg_dump was cut off halfway (disk full, killed), and the copy job shipped it as it was."""
    data = _newest_dump()
    when = dt.datetime.now().replace(microsecond=0) + dt.timedelta(seconds=1)
    _place("server", data[: len(data) // 2], when)
    _place("offsite", data[: len(data) // 2], when)


def dump_missing_offsite() -> None:
    newest = lab_map.dumps(PATHS.backups)[-1]
    _stash("offsite", PATHS.offsite / newest.name)


def restore_drift() -> None:
    """A burst of admin actions since the last dump: admin_audit_log has half as many rows again."""
    BOOK.note(**{"drift-rows": ["imported audit entries"]})
    with lab_map.SERVER.dockerd.session() as client:
        lab_map.psql(
            client,
            "INSERT INTO admin_audit_log (actor, action, details) SELECT 'import', 'marker.import', "
            "'imported ' || n FROM generate_series(1, (SELECT count(*) / 2 FROM admin_audit_log)) AS n",
        )


FAULTS: list[Fault] = [
    fault(
        "web-down",
        "web stopped (docker compose stop web): nginx answers 502 (incident 1)",
        fails={"web-running", "web-port", *THROUGH_NGINX, *INSIDE_WEB},
        inject=web_down,
        recreate={WEB},
    ),
    fault(
        "missing-env-key",
        "SECRET_KEY missing from .env, web recreated: gunicorn fails at start, nginx 502 (incident 1)",
        fails={"web-running", "web-port", "web-env", *THROUGH_NGINX, "metrics-local"},
        # gunicorn-boot reads web's log since its current start (the runbook's "стартовал"): a run
        # that catches one of the loop's attempts before gunicorn printed its error sees none yet;
        # db-migrations asks `alembic heads` inside web, which a look that lands in
        # one of the loop's moments of running answers (the database is at head)
        may_fail={"gunicorn-boot", "db-migrations"},
        inject=missing_secret_key,
        recreate={WEB},
    ),
    fault(
        "redis-url-missing",
        "REDIS_URL dropped from .env, web and worker recreated: web runs (limits in memory, /ready "
        "without Redis); the worker runs its scheduler, but its Pub/Sub listener dies (KeyError)",
        fails={"web-redis-url", "worker-subscribed"},
        inject=lambda: _redeploy("REDIS_URL", None),
        recreate={WEB, WORKER},
    ),
    fault(
        "web-hung",
        "web hangs with its port open (docker pause): nginx answers 504 (incident 1)",
        fails={"web-running", *THROUGH_NGINX, *INSIDE_WEB},
        inject=web_hung,
        recreate={WEB},
    ),
    fault(
        "db-down",
        "db stopped: /ready says db=error (incident 2)",
        fails=DB_GONE,
        inject=db_down,
        recreate={DB},
    ),
    fault(
        "redis-down",
        "redis stopped: /ready says redis=error, the worker loses its subscription (incident 3)",
        fails={"redis-running", "redis-ping", "ready", "worker-subscribed"},
        inject=redis_down,
        # web too: while redis was down its limiter fell back to memory, where the heal's reset of
        # the limiter's Redis keys cannot reach, and the next run's first login got 429.
        recreate={REDIS, WORKER, WEB},
    ),
    fault(
        "worker-unsubscribed",
        "Redis dropped the worker's Pub/Sub connection; the worker runs on, subscribed to nothing",
        fails={"worker-subscribed"},
        inject=worker_unsubscribed,
        recreate={WORKER},
    ),
    fault(
        "migration-pending",
        "a release's migration 0004 is deployed in web, `alembic upgrade head` not run",
        fails={"db-migrations"},
        inject=migration_pending,
    ),
    fault(
        "metrics-public",
        "METRICS_ALLOW_PUBLIC=1 in .env, web recreated: /metrics open to anyone",
        fails={"metrics-not-public", "web-metrics-private-flag"},
        inject=metrics_public,
        hides={"metrics-key-wrong": "/metrics open to anyone answers a wrong X-API-KEY too"},
    ),
    fault(
        "metrics-key-wrong",
        "web's METRICS_API_KEY changed, the scraper's key not: X-API-KEY refused",
        fails={"metrics-api-key"},
        inject=metrics_key_wrong,
    ),
    fault(
        "secret-key-placeholder",
        "SECRET_KEY=changeme in .env, web recreated (it starts, sessions forgeable)",
        fails={"web-env"},
        inject=secret_key_placeholder,
    ),
    fault(
        "cookie-not-secure",
        "SESSION_COOKIE_SECURE=0 on HTTPS, web recreated: the session cookie lacks Secure",
        fails={"web-cookie-secure-flag"},
        inject=cookie_not_secure,
    ),
    fault(
        "bot-key-mismatch",
        "the bot's BOT_API_KEY differs from the server's: its calls are refused (incident 4)",
        fails={"bot-key-agrees"},
        inject=bot_key_mismatch,
        recreate={BOT},
    ),
    fault(
        "rate-limit-off",
        "RATE_LIMIT_ENABLED=0 in .env, web recreated: /login and the chat never answer 429",
        fails={"login-rate-limit", "chat-rate-limit"},
        inject=rate_limit_off,
    ),
    fault(
        "chat-page-5000",
        "CHAT_DEFAULT_LIMIT=5000, web recreated: /api/chat/<id> returns 5000 messages",
        fails={"chat-page"},
        inject=chat_page_5000,
    ),
    fault(
        "slow-endpoint",
        "web limited to 2% of a CPU (docker update --cpus 0.02): perf sanity's requests time out",
        fails={"perf-sanity"},
        # a starved web: what runs inside it (alembic, a scrape) and every request through nginx
        # may outlast its deadline, or not, by the moment
        may_fail=(INSIDE_WEB | THROUGH_NGINX) - {"perf-sanity"},
        inject=slow_endpoint,
        recreate={WEB},
    ),
    fault(
        "scripts-writable",
        "db recreated with ./deploy mounted read-write at /scripts (not the runbook's read-only mount)",
        fails={"db-mounts"},
        inject=scripts_writable,
        recreate={DB},
    ),
    fault(
        "backup-script-missing",
        "backup_postgres.sh removed from ./deploy: the runbook's backup command has no script to run",
        fails={"backup-script"},
        inject=script_missing("backup_postgres.sh"),
    ),
    fault(
        "restore-script-missing",
        "restore_postgres.sh removed from ./deploy: the runbook's restore command has no script to run",
        fails={"restore-script"},
        inject=script_missing("restore_postgres.sh"),
    ),
    fault(
        "stale-dump",
        "the backup job stopped: the newest dump (and its copy) is 49 h old",
        fails={"pgdump-fresh"},
        inject=stale_dump,
    ),
    fault(
        "corrupt-dump",
        "tonight's pg_dump was cut off halfway and copied off the host as it was",
        fails={"pgdump-readable", "restore-test"},
        inject=corrupt_dump,
        replaces={"stale-dump": "it places tonight's (cut) dump: the newest is no longer stale"},
    ),
    fault(
        "dump-missing-offsite",
        "the newest dump was never copied off the host",
        fails={"pgdump-offsite"},
        inject=dump_missing_offsite,
    ),
    fault(
        "restore-drift",
        "the live admin_audit_log table has 50% more rows than the newest dump restores",
        fails={"restore-test"},
        inject=restore_drift,
    ),
]
