"""The Map v12 production server of the runbook, rebuilt on this machine, and its backup host.

The server (netns rbs-map, 198.18.1.2) runs dockerd with the compose project `map-v12` of
docker-compose.prod.yml: nginx (TLS on 443) in front of web (Flask under gunicorn), worker
(Redis Pub/Sub), db (PostgreSQL 15) and redis, plus the chat bot. Every service runs the
machine's own binaries (bind-mounted /usr). Migrations are real Alembic revisions applied
with `alembic upgrade head` in web; backups are `pg_dump -Fc` archives made by the runbook's
backup script in db, and each is copied to the second host (198.18.1.6), the off-host copy.
This module is the topology and the stand-ins; the fault table is faults.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker

from lab import addresses, envfile
from lab.backups import age_hours
from lab.containers import (
    SHORT_DNS_RESOLV_CONF,
    ComposeProject,
    Spec,
    container_components,
    ensure_hostroot_image,
    exec_output,
    get_container,
    reconcile,
    remove_container,
)
from lab.core import Component, Fault, LabError, random_token, require, run, wait_until, write_file
from lab.datastores import Datastores
from lab.envfile import parse_env
from lab.host import Host
from lab.http_probe import get_json
from lab.system import FaultBook, HealPlan, LabSystem, state_dir
from lab.trees import copy_tree, tree_digest

NAME = "map-v12"
SERVER = Host(system=NAME, netns="rbs-map", machine_if="rbs-map0")
BACKUP_HOST = Host(system=NAME, netns="rbs-map-bak", machine_if="rbs-map1", slot=1, name="map-v12-backup")
BOOK = FaultBook(NAME)

WORKDIR = "/root/map-v12"
PROJECT = ComposeProject(name=NAME, working_dir=WORKDIR, config_file="docker-compose.prod.yml")
NETWORK = PROJECT.network_name("default")

WEB, WORKER, DB, REDIS, NGINX, BOT = (
    f"{NAME}-{service}-1" for service in ("web", "worker", "db", "redis", "nginx", "bot")
)
DATASTORES = Datastores(project=PROJECT, postgres=DB, postgres_service="db", redis=REDIS, database="map")
CONTAINERS = (DB, REDIS, WEB, WORKER, BOT, NGINX)
CHANNEL = "map:events"
BACKUP_DIR = f"{WORKDIR}/backups"
OFFSITE_DIR = "/root/backups/map-v12"
BACKUP_COMMAND = f"docker exec {DB} bash -lc /scripts/backup_postgres.sh"
CRON_LINE = f"30 2 * * * {BACKUP_COMMAND} >> /var/log/map-backup.log 2>&1"
BASE_URL = f"https://{SERVER.addr}"
# nginx runs the machine's /usr (its binary and libraries are there: no image can be pulled, so the
# mount stays), which would hand it the machine's python3. The official nginx image has none, so
# an empty folder hides python3's standard library in nginx: python3 there cannot start, as in
# production, and the suite's probes from nginx (web-port) use what a real nginx image has.
NGINX_NO_PYTHON = f"/usr/lib/{os.path.basename(os.path.realpath('/usr/bin/python3'))}"
# `up` makes a new dump only when the newest is older than this; the suite alarms at 25 h.
FRESH_HOURS = 20
LIMITER_KEYS = "LIMITER/*"
HERE = Path(__file__).resolve().parent
# Lab secrets -> the lab.env variable the descriptions read them from (${...}).
LAB_ENV = {"POSTGRES_PASSWORD": "MAP_DB_PASSWORD", "METRICS_API_KEY": "MAP_METRICS_API_KEY"}
MAP_NEEDS = {
    "/usr/lib/postgresql/15/bin/postgres": "postgresql-15",
    "/usr/sbin/nginx": "nginx",
    "/usr/bin/gunicorn": "gunicorn",
    "/usr/bin/alembic": "alembic",
    "/usr/lib/python3/dist-packages/flask": "python3-flask",
    "/usr/lib/python3/dist-packages/flask_limiter": "python3-flask-limiter",
    "/usr/lib/python3/dist-packages/psycopg2": "python3-psycopg2",
    "/usr/lib/python3/dist-packages/redis": "python3-redis",
    "/usr/lib/python3/dist-packages/prometheus_client": "python3-prometheus-client",
    "/usr/bin/redis-server": "redis-server",
    "/usr/bin/setpriv": "util-linux",
    "openssl": "openssl",
}
# Seed data: enough chat history for pagination to matter (over 500), admin and devices.
SEED_SQL = """
INSERT INTO users (name) SELECT 'user ' || n FROM generate_series(1, 20) AS n;
INSERT INTO admin_users (username, password_hash, role) VALUES ('admin', '{password_hash}', 'superadmin');
INSERT INTO markers (title, lat, lon, created_at)
  SELECT 'marker ' || n, 55 + n / 1000.0, 37 + n / 1000.0, now() - n * interval '1 minute'
  FROM generate_series(1, 300) AS n;
INSERT INTO chat_messages (user_id, text, created_at)
  SELECT 1, 'message ' || n, now() - (6000 - n) * interval '1 second' FROM generate_series(1, 6000) AS n;
INSERT INTO tracker_devices (name) SELECT 'device ' || n FROM generate_series(1, 120) AS n;
INSERT INTO admin_audit_log (actor, action, details)
  SELECT 'admin', 'marker.update', 'seed ' || n FROM generate_series(1, 10) AS n;
"""


class Paths:
    """Machine-side paths of the servers' files (computed late: RUNBOOK_LAB_DIR may change)."""

    @property
    def workdir(self) -> Path:
        return SERVER.root / WORKDIR.removeprefix("/root/")

    @property
    def env(self) -> Path:
        return self.workdir / ".env"

    @property
    def bot_env(self) -> Path:
        return self.workdir / "bot.env"

    @property
    def app(self) -> Path:
        return self.workdir / "app"

    @property
    def versions(self) -> Path:
        return self.app / "migrations" / "versions"

    @property
    def deploy(self) -> Path:
        return self.workdir / "deploy"

    @property
    def tls(self) -> Path:
        return self.deploy / "tls"

    @property
    def backups(self) -> Path:
        return self.workdir / "backups"

    @property
    def no_python(self) -> Path:
        """An empty folder laid over nginx's Python library (see NGINX_NO_PYTHON)."""
        return self.workdir / "no-python"

    @property
    def offsite(self) -> Path:
        return BACKUP_HOST.root / OFFSITE_DIR.removeprefix("/root/")

    @property
    def crontab(self) -> Path:
        return SERVER.hostdir / "crontabs" / "root"

    @property
    def stash(self) -> Path:
        """Where backup faults keep dumps until heal puts them back."""
        return state_dir(NAME) / "stash"


PATHS = Paths()


# ---- secrets and configuration ---------------------------------------------------------
def lab_secrets() -> dict[str, str]:
    """Fake per-lab credentials, generated once and kept in the state dir."""
    return envfile.lab_secrets(
        NAME,
        {
            "SECRET_KEY": lambda: secrets.token_urlsafe(32),
            "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(18),
            "METRICS_API_KEY": random_token,
            "BOT_API_KEY": random_token,
            "ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
        },
    )


def render_env(values: dict[str, str]) -> str:
    """The server's .env next to docker-compose.prod.yml, as the runbook's quick start lists it."""
    database_url = f"postgresql://map:{values['POSTGRES_PASSWORD']}@db:5432/map"
    return envfile.render_env(
        [
            "# Map v12: production settings (runbook-lab replica, fake per-lab values)",
            f"SECRET_KEY={values['SECRET_KEY']}",
            f"DATABASE_URL={database_url}",
            "REDIS_URL=redis://redis:6379/0",
            f"BOT_API_KEY={values['BOT_API_KEY']}",
            "SESSION_COOKIE_SECURE=1",
            "ENABLE_METRICS=1",
            "METRICS_ALLOW_PUBLIC=0",
            f"METRICS_API_KEY={values['METRICS_API_KEY']}",
            "RATE_LIMIT_ENABLED=1",
            "RATE_LIMIT_LOGIN_PER_MINUTE=10",
            "RATE_LIMIT_CHAT_PER_MINUTE=120",
            "CHAT_DEFAULT_LIMIT=500",
            f"MAP_EVENTS_CHANNEL={CHANNEL}",
            "",
            "# db",
            "POSTGRES_USER=map",
            f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}",
            "POSTGRES_DB=map",
        ]
    )


def render_bot_env(values: dict[str, str]) -> str:
    return f"# Map v12 chat bot\nSERVER_URL=http://web:8000\nBOT_API_KEY={values['BOT_API_KEY']}\n"


def set_env_value(path: Path, key: str, value: str | None) -> None:
    """Change (or with None drop) one key of an env file in place, keeping its order."""
    lines = path.read_text().splitlines()
    kept = [
        line if not line.startswith(f"{key}=") else f"{key}={value}"
        for line in lines
        if value is not None or not line.startswith(f"{key}=")
    ]
    write_file(path, "\n".join(kept) + "\n", 0o600)


def ensure_certificate() -> None:
    """A self-signed certificate for nginx's TLS, made once."""
    key, certificate = PATHS.tls / "map.key", PATHS.tls / "map.crt"
    if key.exists() and certificate.exists():
        return
    PATHS.tls.mkdir(parents=True, exist_ok=True)
    subject = ["-subj", "/CN=map.lab.invalid", "-keyout", str(key), "-out", str(certificate)]
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", *subject])
    key.chmod(0o644)  # read by nginx's master; the lab's certificate guards nothing


def write_server_files(*, strict: bool) -> None:
    """Lay the server's files; `strict` (heal) also restores the ones a fault may change."""
    values = lab_secrets()
    PATHS.workdir.mkdir(parents=True, exist_ok=True)
    copy_tree(HERE / "app", PATHS.app)
    DATASTORES.lay_entrypoint(PATHS.deploy)
    for script in ("backup_postgres.sh", "restore_postgres.sh"):
        write_file(PATHS.deploy / script, (HERE / "deploy" / script).read_bytes(), 0o755)
    write_file(PATHS.deploy / "nginx.conf", (HERE / "deploy" / "nginx.conf").read_bytes())
    write_file(PATHS.deploy / "resolv.conf", SHORT_DNS_RESOLV_CONF)
    compose = (HERE / "docker-compose.prod.yml").read_text()
    write_file(PATHS.workdir / "docker-compose.prod.yml", compose)
    ensure_certificate()
    if strict or not PATHS.env.exists():
        write_file(PATHS.env, render_env(values), 0o600)
    if strict or not PATHS.bot_env.exists():
        write_file(PATHS.bot_env, render_bot_env(values), 0o600)
    PATHS.backups.mkdir(parents=True, exist_ok=True)
    PATHS.no_python.mkdir(parents=True, exist_ok=True)
    PATHS.offsite.mkdir(parents=True, exist_ok=True)
    (SERVER.hostdir / "log").mkdir(parents=True, exist_ok=True)
    if strict or not PATHS.crontab.exists():
        write_crontab(CRON_LINE + "\n")
    envfile.publish({variable: values[key] for key, variable in LAB_ENV.items()})


def write_crontab(text: str) -> None:
    """Root's crontab as cron keeps it: mode 600, group crontab."""
    import grp

    write_file(PATHS.crontab, text, 0o600)
    with contextlib.suppress(KeyError):
        os.chown(PATHS.crontab, 0, grp.getgrnam("crontab").gr_gid)


# ---- the services of docker-compose.prod.yml ---------------------------------------------
def specs() -> dict[str, Spec]:
    """The containers `docker compose -f docker-compose.prod.yml up -d` makes."""
    usr = ["/usr:/usr:ro"]
    env = parse_env(PATHS.env)
    app_env = {key: value for key, value in env.items() if not key.startswith("POSTGRES_")}
    app_code = tree_digest(HERE / "app")
    app_binds = [f"{PATHS.app}:/app:ro", f"{PATHS.deploy / 'resolv.conf'}:/etc/resolv.conf:ro", *usr]
    common: dict[str, Any] = {"project": PROJECT, "network": NETWORK, "mem_limit": ""}
    python = ["/usr/bin/python3", "-u"]
    return {
        **DATASTORES.specs(env=env, deploy=PATHS.deploy, backups=PATHS.backups, scripts=HERE / "deploy"),
        WEB: Spec(
            name=WEB,
            service="web",
            command=[
                "/usr/bin/gunicorn",
                "--bind=0.0.0.0:8000",
                "--workers=1",
                "--threads=16",
                "--worker-class=gthread",
                "--preload",
                "--access-logfile=-",
                "app:app",
            ],
            binds=app_binds,
            env=app_env,
            working_dir="/app",
            content=app_code,
            **common,
        ),
        WORKER: Spec(
            name=WORKER,
            service="worker",
            command=[*python, "/app/worker.py"],
            binds=app_binds,
            env={
                key: app_env[key]
                for key in ("DATABASE_URL", "REDIS_URL", "MAP_EVENTS_CHANNEL")
                if key in app_env
            },
            working_dir="/app",
            content=app_code,
            **common,
        ),
        BOT: Spec(
            name=BOT,
            service="bot",
            command=[*python, "/app/bot.py"],
            binds=app_binds,
            env=parse_env(PATHS.bot_env),
            working_dir="/app",
            content=app_code,
            **common,
        ),
        NGINX: Spec(
            name=NGINX,
            service="nginx",
            command=["/usr/sbin/nginx", "-e", "stderr", "-c", "/etc/nginx/map/nginx.conf"],
            binds=[
                f"{PATHS.deploy / 'nginx.conf'}:/etc/nginx/map/nginx.conf:ro",
                f"{PATHS.tls}:/etc/nginx/tls:ro",
                # a probe from nginx to a stopped web (the runbook's `web:8000` check) looks the name up
                f"{PATHS.deploy / 'resolv.conf'}:/etc/resolv.conf:ro",
                *usr,
                f"{PATHS.no_python}:{NGINX_NO_PYTHON}:ro",
            ],
            ports={80: 80, 443: 443},
            content=tree_digest(HERE / "deploy"),
            **common,
        ),
    }


def fetch(path: str, timeout: float = 3) -> tuple[int, dict[str, Any]]:
    """(status, JSON body or {}) of GET BASE_URL+path through nginx, as a client sees it."""
    return get_json(BASE_URL + path, timeout, verify_tls=False)


def ready(timeout: float = 2) -> bool:
    code, body = fetch("/ready", timeout)
    return code == 200 and body.get("components") == {"db": "ok", "redis": "ok"}


def psql(client: docker.DockerClient, sql: str) -> str:
    """psql -U map -d map in db (local socket, trusted), stopping at the first error."""
    return DATASTORES.psql(client, sql)


def db_answers(client: docker.DockerClient) -> bool:
    return DATASTORES.answers(client)


# web reaches db over the compose network, as alembic and the app do; the socket answering
# inside db is not enough (a CI run once had alembic refused right after it answered).
WEB_REACHES_DB = (
    "import socket; address = socket.gethostbyname('db'); print('db is', address);"
    " socket.create_connection((address, 5432), 2).close()"
)


def web_reaches_db(client: docker.DockerClient) -> bool:
    """True once web connects to db:5432; otherwise raises with what web saw (for the timeout)."""
    code, output = exec_output(client, WEB, ["/usr/bin/python3", "-c", WEB_REACHES_DB])
    if code != 0:
        raise LabError(output.strip()[-300:])
    return True


def subscribers(client: docker.DockerClient) -> int:
    code, output = exec_output(client, REDIS, ["redis-cli", "PUBSUB", "NUMSUB", CHANNEL])
    lines = output.split()
    return int(lines[1]) if code == 0 and len(lines) == 2 else 0


def migrate_and_seed(client: docker.DockerClient) -> bool:
    """`exec web alembic upgrade head` (runbook step 3), then seed data once; True when the
    database had to be made anew (Datastores.migrate)."""
    remade = DATASTORES.migrate(client, WEB, ["alembic", "upgrade", "head"])
    if psql(client, "SELECT count(*) FROM admin_users") == "0":
        # The hash is [a-z0-9:$] only (werkzeug's format), so it sits in the literal as it is.
        psql(client, SEED_SQL.format(password_hash=password_hash(lab_secrets()["ADMIN_PASSWORD"])))
    return remade


def password_hash(password: str) -> str:
    """werkzeug's pbkdf2:sha256 format, so the app's check_password_hash accepts it."""
    salt, iterations = secrets.token_hex(8), 260_000
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()
    return f"pbkdf2:sha256:{iterations}${salt}${digest}"


def reset_login_limiter(client: docker.DockerClient) -> None:
    """Forget the limiter's windows (Flask-Limiter's keys in Redis), as after its minute."""
    script = f"redis-cli --scan --pattern '{LIMITER_KEYS}' | xargs -r redis-cli DEL >/dev/null"
    exec_output(client, REDIS, ["sh", "-c", script])


def ensure_worker_subscribed(client: docker.DockerClient) -> None:
    """The worker resubscribes only at start: after Redis went away (a fault, or a plain
    `docker stop`), a new worker container is what brings the subscription back."""
    with contextlib.suppress(LabError):
        wait_until(lambda: subscribers(client) >= 1, timeout=5, what=f"the worker on {CHANNEL}")
        return
    remove_container(client, WORKER)
    reconcile(client, [specs()[WORKER]], strict=True)
    wait_until(lambda: subscribers(client) >= 1, timeout=30, what=f"the worker on {CHANNEL}")


# ---- backups ---------------------------------------------------------------------------
def dumps(folder: Path) -> list[Path]:
    """pg_dump archives, oldest first by mtime (the suite picks the newest)."""
    return (
        sorted(folder.glob("pgdump_*.dump"), key=lambda path: path.stat().st_mtime) if folder.is_dir() else []
    )


def copy_offsite(dump: Path) -> Path:
    """The off-host copy (rsync/scp in production): same name, bytes and mtime on the backup host."""
    PATHS.offsite.mkdir(parents=True, exist_ok=True)
    target = PATHS.offsite / dump.name
    shutil.copy2(dump, target)
    return target


def ensure_dumps(*, anew: bool = False) -> None:
    """A fresh dump by the runbook's backup script (`anew`: whatever the newest's age), and its
    copy off the host."""
    existing = dumps(PATHS.backups)
    if anew or not existing or age_hours(existing[-1]) > FRESH_HOURS:
        SERVER.ssh(f"{BACKUP_COMMAND} >> /var/log/map-backup.log 2>&1")
        existing = dumps(PATHS.backups)
        if not existing:
            raise LabError(f"backup_postgres.sh made no dump in {PATHS.backups}")
    newest = existing[-1]
    copy = PATHS.offsite / newest.name
    if not copy.exists() or copy.read_bytes() != newest.read_bytes():
        copy_offsite(newest)


def restore_stash() -> None:
    """Put back the dumps backup faults moved away (both hosts), dropping what they placed."""
    for folder, stash in ((PATHS.backups, PATHS.stash / "server"), (PATHS.offsite, PATHS.stash / "offsite")):
        placed = BOOK.load().get(f"placed-{stash.name}", [])
        for name in placed:
            (folder / name).unlink(missing_ok=True)
        if stash.is_dir():
            for path in stash.iterdir():
                shutil.move(str(path), folder / path.name)
            stash.rmdir()


# ---- the system ------------------------------------------------------------------------
class MapSystem(LabSystem):
    def __init__(self, faults: Sequence[Fault]) -> None:
        super().__init__(name=NAME, hosts=[SERVER, BACKUP_HOST], faults=faults)

    def converge(self, *, plan: HealPlan | None) -> None:
        require(MAP_NEEDS)
        strict = plan is not None
        for host in self.hosts:
            host.up()
        write_server_files(strict=strict)
        with SERVER.dockerd.session() as client:
            if plan is not None:
                web = get_container(client, WEB)
                if web is not None and web.status == "paused":
                    web.unpause()
                restore_stash()
            ensure_hostroot_image(client)
            PROJECT.ensure_network(client, "default", addresses.container_subnet(NAME, 0))
            DATASTORES.ensure_volume(client)
            reconcile(
                client,
                specs().values(),
                strict=strict,
                recreate=plan.recreate if plan else (),
                answers={REDIS: DATASTORES.redis_pong},
            )
            wait_until(lambda: db_answers(client), timeout=60, what=f"PostgreSQL in {DB}", interval=0.2)
            wait_until(lambda: web_reaches_db(client), timeout=60, what=f"{WEB} to reach db:5432")
            remade = migrate_and_seed(client)
            if plan is not None and "drift-rows" in plan.book:
                psql(client, "DELETE FROM admin_audit_log WHERE actor = 'import'")
            reset_login_limiter(client)
            wait_until(ready, timeout=60, what=f"{BASE_URL}/ready to answer db=ok redis=ok", interval=0.2)
            ensure_worker_subscribed(client)
            ensure_dumps(anew=remade)

    def service_components(self) -> list[Component]:
        if not SERVER.dockerd.ok():
            lines = [Component(f"container {name}", False, "dockerd down") for name in CONTAINERS]
        else:
            with SERVER.dockerd.session() as client:
                lines = container_components(client, CONTAINERS)
        lines.append(self._ready_component())
        newest = dumps(PATHS.backups)[-1:] or None
        if newest:
            copied = (PATHS.offsite / newest[0].name).exists()
            copy = "copied off the host" if copied else "NO off-host copy"
            detail = f"newest {newest[0].name} ({age_hours(newest[0]):.1f} h old), {copy}"
            lines.append(Component("backups", age_hours(newest[0]) < 25 and copied, detail))
        else:
            lines.append(Component("backups", False, f"no pgdump_*.dump in {BACKUP_DIR}"))
        return lines

    @staticmethod
    def _ready_component() -> Component:
        if not SERVER.link.ok():
            return Component("ready", False, f"{BASE_URL}/ready: host network down, not probed")
        try:
            code, body = fetch("/ready")
        except Exception as exc:
            return Component("ready", False, f"{BASE_URL}/ready -> {exc}")
        return Component("ready", code == 200, f"{BASE_URL}/ready -> {code} {body.get('components', '')}")

    def forget(self) -> None:
        envfile.unpublish(LAB_ENV.values())
