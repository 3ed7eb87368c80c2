"""The Loyalty API production server of the runbook, rebuilt on this machine.

One server (netns rbs-loyalty, 198.18.2.2) whose dockerd runs the compose project `loyalty` of
docker-compose.production.yml: `api` (:3000), `worker` (the outbox), `postgres` (PostgreSQL 15,
container name `postgres` as the runbook's `docker exec postgres` has it), `redis`, the merchant's
webhook endpoint the worker delivers to, and a real Prometheus (:9090) scraping the api every 5 s.
Every service runs the machine's own binaries (bind-mounted /usr). Migrations are Prisma-style
folders in the api's /app/prisma/migrations with rows in `_prisma_migrations`; backups are plain
`pg_dump | gzip` files made in postgres by deploy/backup.sh. The repository root /root/loyalty
has the runbook's ./scripts/smoke-check.sh and ./scripts/smoke-integrations.sh (lab stand-ins
that really walk the endpoints). The fault table is faults.py.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker

from lab import addresses, envfile
from lab.backups import age_hours
from lab.containers import (
    ComposeProject,
    Spec,
    container_components,
    ensure_hostroot_image,
    reconcile,
)
from lab.core import Component, Fault, LabError, require, upsert_env_line, wait_until, write_file
from lab.datastores import Datastores
from lab.envfile import parse_env
from lab.host import Host
from lab.http_probe import get_json
from lab.system import FaultBook, HealPlan, LabSystem, state_dir
from lab.trees import copy_tree, tree_digest

NAME = "loyalty-api"
SERVER = Host(system=NAME, netns="rbs-loyalty", machine_if="rbs-loy0")
BOOK = FaultBook(NAME)
HERE = Path(__file__).resolve().parent
WORKDIR = "/root/loyalty"
PROJECT = ComposeProject(name="loyalty", working_dir=WORKDIR, config_file="docker-compose.production.yml")
NETWORK = PROJECT.network_name("default")
API, WORKER, REDIS, MERCHANT, PROMETHEUS = (
    f"loyalty-{service}-1" for service in ("api", "worker", "redis", "merchant", "prometheus")
)
POSTGRES = "postgres"
DATASTORES = Datastores(
    project=PROJECT, postgres=POSTGRES, postgres_service="postgres", redis=REDIS, database="loyalty"
)
CONTAINERS = (POSTGRES, REDIS, API, WORKER, MERCHANT, PROMETHEUS)
BASE_URL = f"http://{SERVER.addr}:3000"
PROMETHEUS_URL = f"http://{SERVER.addr}:9090"
BACKUP_COMMAND = f"docker exec {POSTGRES} /scripts/backup.sh"
RESOLV_CONF = "nameserver 127.0.0.11\noptions ndots:0 timeout:1 attempts:1\n"
FRESH_HOURS = 20
SCRIPTS = ("smoke-check.sh", "smoke-integrations.sh")
# The runbook's alert thresholds, as the team sets them (the lab's: small, so faults show).
# ALERT_HTTP_SLOW_THRESHOLD_MS 1000: the lab shares 2 cores with its tests, and healthy requests
# crossed 500 ms.
THRESHOLDS = {
    "ALERT_HTTP_5XX_PER_MIN": "2",
    "ALERT_HTTP_SLOW_PER_MIN": "1",
    "ALERT_HTTP_SLOW_THRESHOLD_MS": "1000",
    "ALERT_OUTBOX_DEAD_DELTA": "5",
}
# Lab secrets -> the lab.env variable the descriptions read them from (${...}).
LAB_ENV = {
    "POSTGRES_PASSWORD": "LOYALTY_DB_PASSWORD",
    "METRICS_TOKEN": "LOYALTY_METRICS_TOKEN",
    "INTEGRATION_API_KEY": "INTEGRATION_API_KEY",
    "SMOKE_USER_TOKEN": "SMOKE_USER_TOKEN",
}
NEEDS = {
    "/usr/lib/postgresql/15/bin/postgres": "postgresql-15",
    "/usr/lib/python3/dist-packages/psycopg2": "python3-psycopg2",
    "/usr/lib/python3/dist-packages/prometheus_client": "python3-prometheus-client",
    "/usr/bin/redis-server": "redis-server",
    "/usr/bin/prometheus": "prometheus",
    "/usr/bin/setpriv": "util-linux",
}
SEED_SQL = """
INSERT INTO customers (user_token, phone, balance)
  SELECT CASE WHEN n = 1 THEN '{smoke_token}' ELSE md5('customer ' || n) END,
         '+7900000' || lpad(n::text, 4, '0'), n % 500
  FROM generate_series(1, 2000) AS n;
INSERT INTO purchases (customer_id, outlet_id, amount)
  SELECT 1 + n % 2000, 'outlet-' || (n % 7), 100 + n % 900
  FROM generate_series(1, 5000) AS n;
"""


EXTERNAL_SERIES = """
INSERT INTO external_requests (provider, result, status, count)
  SELECT provider, result, status, 0 FROM (VALUES ('merchant_webhook'), ('telegram')) AS p (provider),
    (VALUES ('ok', '200'), ('rate_limited', '429'), ('http_error', '500'), ('error', ''))
      AS r (result, status)
ON CONFLICT DO NOTHING
"""


class Paths:
    @property
    def workdir(self) -> Path:
        return SERVER.root / "loyalty"  # the server's /root/loyalty

    @property
    def env(self) -> Path:
        return self.workdir / ".env.production"

    @property
    def app(self) -> Path:
        return self.workdir / "app"

    @property
    def deploy(self) -> Path:
        return self.workdir / "deploy"

    @property
    def backups(self) -> Path:
        return self.workdir / "backups"

    @property
    def merchant(self) -> Path:
        """The merchant's side: its /data/mode."""
        return SERVER.hostdir / "merchant"

    @property
    def stash(self) -> Path:
        return state_dir(NAME) / "stash"


PATHS = Paths()


def lab_secrets() -> dict[str, str]:
    """Fake per-lab credentials, generated once and kept in the state dir."""
    return envfile.lab_secrets(
        NAME,
        {
            "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(18),
            "METRICS_TOKEN": lambda: secrets.token_urlsafe(24),
            "INTEGRATION_API_KEY": lambda: secrets.token_urlsafe(24),
            "SMOKE_USER_TOKEN": lambda: secrets.token_hex(16),
            "TELEGRAM_NOTIFY_BOT_TOKEN": lambda: f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(26)}",
            "TELEGRAM_NOTIFY_WEBHOOK_SECRET": lambda: secrets.token_urlsafe(24),
            "ALERT_TELEGRAM_BOT_TOKEN": lambda: f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(26)}",
        },
    )


def render_env(values: dict[str, str]) -> str:
    """.env.production as the runbook's deploy reads it (fake per-lab values)."""
    return envfile.render_env(
        [
            "# Loyalty API: production settings (runbook-lab replica, fake per-lab values)",
            "NODE_ENV=production",
            "PORT=3000",
            f"DATABASE_URL=postgresql://loyalty:{values['POSTGRES_PASSWORD']}@postgres:5432/loyalty",
            "REDIS_URL=redis://redis:6379/0",
            f"METRICS_TOKEN={values['METRICS_TOKEN']}",
            f"INTEGRATION_API_KEY={values['INTEGRATION_API_KEY']}",
            "API_BASE_URL=https://loyalty.example.com",
            f"TELEGRAM_NOTIFY_BOT_TOKEN={values['TELEGRAM_NOTIFY_BOT_TOKEN']}",
            f"TELEGRAM_NOTIFY_WEBHOOK_SECRET={values['TELEGRAM_NOTIFY_WEBHOOK_SECRET']}",
            f"ALERT_TELEGRAM_BOT_TOKEN={values['ALERT_TELEGRAM_BOT_TOKEN']}",
            "ALERT_TELEGRAM_CHAT_ID=-1001234567890",
            "ALERTS_5XX_SAMPLE_RATE=0.1",
            *(f"{key}={value}" for key, value in THRESHOLDS.items()),
            "MAINTENANCE_MODE=0",
            "READ_ONLY_MODE=0",
            "WORKERS_ENABLED=1",
            "MERCHANT_WEBHOOK_URL=http://merchant:8080/webhooks/loyalty",
            "",
            "# postgres",
            "POSTGRES_USER=loyalty",
            f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}",
            "POSTGRES_DB=loyalty",
        ]
    )


def set_env_value(key: str, value: str | None) -> None:
    """Change (or with None drop) one key of .env.production in place."""
    upsert_env_line(PATHS.env, key, value)


def prometheus_config(token: str) -> str:
    return (
        "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\n"
        "scrape_configs:\n  - job_name: loyalty-api\n    metrics_path: /metrics\n"
        f"    authorization: {{type: Bearer, credentials: {json.dumps(token)}}}\n"
        '    static_configs:\n      - targets: ["api:3000"]\n'
    )


def write_server_files(*, strict: bool) -> None:
    """Lay the server's files; `strict` (heal) also restores what a fault may change."""
    values = lab_secrets()
    app = HERE / "app"
    if strict or not PATHS.app.exists():
        # In place: the running containers bind-mount this directory, so it must never be replaced.
        copy_tree(app, PATHS.app)
        for folder in sorted(PATHS.app.rglob("*"), reverse=True):  # a folder a fault planted
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    DATASTORES.lay_entrypoint(PATHS.deploy)
    write_file(PATHS.deploy / "backup.sh", (HERE / "deploy" / "backup.sh").read_bytes(), 0o755)
    write_file(PATHS.deploy / "resolv.conf", RESOLV_CONF)
    write_file(PATHS.deploy / "prometheus.yml", prometheus_config(values["METRICS_TOKEN"]))
    write_file(
        PATHS.workdir / "docker-compose.production.yml", (HERE / "docker-compose.production.yml").read_text()
    )
    # The runbook's ./scripts/smoke-*.sh, run from the repository root (stand-ins: lab/loyalty_api/scripts).
    for script in SCRIPTS:
        write_file(PATHS.workdir / "scripts" / script, (HERE / "scripts" / script).read_text(), 0o755)
    if strict or not PATHS.env.exists():
        write_file(PATHS.env, render_env(values), 0o600)
    PATHS.backups.mkdir(parents=True, exist_ok=True)
    if strict or not (PATHS.merchant / "mode").exists():
        write_file(PATHS.merchant / "mode", "ok\n")
    envfile.publish({variable: values[key] for key, variable in LAB_ENV.items()})
    envfile.publish({**THRESHOLDS, "SMOKE_OUTLET_ID": "outlet-3"})


def specs() -> dict[str, Spec]:
    """The containers `docker compose -f docker-compose.production.yml up -d` makes."""
    usr = ["/usr:/usr:ro"]
    env = parse_env(PATHS.env)
    app_env = {key: value for key, value in env.items() if not key.startswith("POSTGRES_")}
    app_binds = [f"{PATHS.app}:/app:ro", f"{PATHS.deploy / 'resolv.conf'}:/etc/resolv.conf:ro", *usr]
    app_code = tree_digest(PATHS.app) if PATHS.app.exists() else ""
    common: dict[str, Any] = {"project": PROJECT, "network": NETWORK, "mem_limit": ""}
    python = ["/usr/bin/python3", "-u"]
    return {
        **DATASTORES.specs(env=env, deploy=PATHS.deploy, backups=PATHS.backups, scripts=HERE / "deploy"),
        API: Spec(
            name=API,
            service="api",
            command=[*python, "/app/api.py"],
            binds=app_binds,
            env=app_env,
            working_dir="/app",
            ports={3000: 3000},
            content=app_code,
            **common,
        ),
        WORKER: Spec(
            name=WORKER,
            service="worker",
            command=[*python, "/app/worker.py"],
            binds=app_binds,
            env={key: app_env[key] for key in ("DATABASE_URL", "WORKERS_ENABLED") if key in app_env},
            working_dir="/app",
            content=app_code,
            **common,
        ),
        MERCHANT: Spec(
            name=MERCHANT,
            service="merchant",
            command=[*python, "/app/merchant.py"],
            binds=[f"{PATHS.merchant}:/data:ro", *app_binds],
            working_dir="/app",
            content=app_code,
            **common,
        ),
        PROMETHEUS: Spec(
            name=PROMETHEUS,
            service="prometheus",
            command=[
                "/usr/bin/prometheus",
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/tmp/prometheus",  # in the container: recreated, it starts empty
                "--web.listen-address=0.0.0.0:9090",
            ],
            binds=[f"{PATHS.deploy / 'prometheus.yml'}:/etc/prometheus/prometheus.yml:ro", *usr],
            ports={9090: 9090},
            content=tree_digest(PATHS.deploy),
            **{**common, "mem_limit": "512m"},
        ),
    }


# ---- probes ----------------------------------------------------------------------------
def fetch(path: str, timeout: float = 3, base: str = BASE_URL) -> tuple[int, dict[str, Any]]:
    return get_json(base + path, timeout)


def ready() -> bool:
    with contextlib.suppress(OSError):
        code, body = fetch("/ready", 2)
        return code == 200 and body.get("components") == {"db": "ok", "redis": "ok"}
    return False


def prometheus_value(query: str) -> float | None:
    """The first value of an instant query, or None."""
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
        url = f"{PROMETHEUS_URL}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=3) as response:
            result = json.loads(response.read())["data"]["result"]
        return float(result[0]["value"][1]) if result else None
    return None


def prometheus_has_history() -> bool:
    """Two scrapes of the api at least: increase() over them is defined."""
    value = prometheus_value('count_over_time(up{job="loyalty-api"}[5m])')
    return value is not None and value >= 2 and prometheus_value('up{job="loyalty-api"}') == 1


def psql(client: docker.DockerClient, sql: str) -> str:
    return DATASTORES.psql(client, sql)


def db_answers(client: docker.DockerClient) -> bool:
    return DATASTORES.answers(client)


def migrate_and_seed(client: docker.DockerClient) -> bool:
    """`exec api pnpm prisma migrate deploy` (its stand-in, migrate.py), then seed data once;
    True when the database had to be made anew (Datastores.migrate)."""
    remade = DATASTORES.migrate(client, API, ["/usr/bin/python3", "/app/migrate.py"])
    # Every series a delivery can produce, at 0: Prometheus' increase() ignores a series' first
    # sample, so a counter born in the middle of a burst would hide the burst.
    psql(client, EXTERNAL_SERIES)
    if psql(client, "SELECT count(*) FROM customers") == "0":
        psql(client, SEED_SQL.format(smoke_token=lab_secrets()["SMOKE_USER_TOKEN"]))
        psql(
            client,
            "INSERT INTO outbox (url, payload) SELECT 'http://merchant:8080/webhooks/loyalty', "
            '\'{"event": "seed"}\' FROM generate_series(1, 5)',
        )
    return remade


def dumps() -> list[Path]:
    folder = PATHS.backups
    return (
        sorted(folder.glob("backup_*.sql.gz"), key=lambda path: path.stat().st_mtime)
        if folder.is_dir()
        else []
    )


def ensure_dumps(*, strict: bool) -> None:
    existing = dumps()
    if strict or not existing or age_hours(existing[-1]) > FRESH_HOURS:
        for path in existing:
            path.unlink()
        SERVER.ssh(f"{BACKUP_COMMAND} >/dev/null")
        if not dumps():
            raise LabError(f"backup.sh made no dump in {PATHS.backups}")


class LoyaltySystem(LabSystem):
    def __init__(self, faults: Sequence[Fault]) -> None:
        super().__init__(name=NAME, hosts=[SERVER], faults=faults)

    def converge(self, *, plan: HealPlan | None) -> None:
        require(NEEDS)
        strict = plan is not None
        SERVER.up()
        write_server_files(strict=strict)
        recreate = set(plan.recreate) if plan else set()
        dumps_touched = plan is not None and any(
            name.startswith("dump-") for name in plan.book.get("active", [])
        )
        with SERVER.dockerd.session() as client:
            ensure_hostroot_image(client)
            PROJECT.ensure_network(client, "default", addresses.container_subnet(NAME, 0))
            DATASTORES.ensure_volume(client)
            reconcile(
                client,
                specs().values(),
                strict=strict,
                recreate=recreate,
                answers={REDIS: DATASTORES.redis_pong},
            )
            wait_until(lambda: db_answers(client), timeout=60, what=f"PostgreSQL in {POSTGRES}", interval=0.2)
            wait_until(ready, timeout=60, what=f"{BASE_URL}/ready to answer db=ok redis=ok", interval=0.3)
            remade = migrate_and_seed(client)
            if plan is not None:
                heal_data(client, plan)
        ensure_dumps(strict=dumps_touched or remade)
        wait_until(prometheus_has_history, timeout=60, what="Prometheus to scrape the api twice", interval=1)

    def service_components(self) -> list[Component]:
        if not SERVER.dockerd.ok():
            return [Component(f"container {name}", False, "dockerd down") for name in CONTAINERS]
        with SERVER.dockerd.session() as client:
            lines = container_components(client, CONTAINERS)
        lines.append(Component("ready", ready(), f"{BASE_URL}/ready"))
        lines.append(Component("prometheus", prometheus_has_history(), f"{PROMETHEUS_URL} scrapes api:3000"))
        newest = dumps()[-1:] or None
        detail = (
            f"newest {newest[0].name} ({age_hours(newest[0]):.1f} h old)" if newest else "no backup_*.sql.gz"
        )
        lines.append(Component("backups", bool(newest) and age_hours(newest[0]) < 25, detail))
        return lines

    def forget(self) -> None:
        envfile.unpublish([*LAB_ENV.values(), *THRESHOLDS, "SMOKE_OUTLET_ID"])


def heal_data(client: docker.DockerClient, plan: HealPlan) -> None:
    """What faults left in the database: rows they planted, rows they removed, the queue."""
    psql(client, "DELETE FROM _prisma_migrations WHERE finished_at IS NULL OR rolled_back_at IS NOT NULL")
    psql(client, "UPDATE outbox SET status = 'delivered' WHERE status IN ('pending', 'dead')")
    psql(client, "DELETE FROM customers WHERE phone LIKE 'drift-%'")
