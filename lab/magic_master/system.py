"""Magic Master rebuilt on a real systemd host: the unit, its journal, SQLite, ffmpeg, cron backups.

One SystemdHost (Debian 12 root with systemd, sshd, python3, sqlite3, ffmpeg and cron) at
198.18.3.2. The stand-in backend (app.py) runs as the `magic-master` unit under the `magic` user
with its settings in /opt/magic-master/.env (EnvironmentFile=), its database at
/opt/magic-master/backend/magic_master.db, its temp_dir on a 256 MB tmpfs of its own, and
root's crontab runs deploy/backup_db.sh into /opt/magic-master/backups. Everything is laid
through the host's own tools (systemctl, crontab, sqlite3), so a check sees what an operator sees.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import shlex
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab import envfile
from lab.core import Component, Fault, wait_until
from lab.http_probe import get_json
from lab.system import HealPlan, LabSystem
from lab.systemd_host import SystemdHost, SystemdImage

NAME = "magic-master"
HERE = Path(__file__).resolve().parent
TEMP_DIR = "/opt/magic-master/tmp"
HOST = SystemdHost(
    system=NAME,
    netns="rbs-mm",
    machine_if="rbs-mm0",
    image=SystemdImage(packages=("cron", "ffmpeg", "python3", "sqlite3")),
    tmpfs=((TEMP_DIR, "size=256m"),),
)
UNIT = "magic-master"
ROOT = "/opt/magic-master"
DB = f"{ROOT}/backend/magic_master.db"
BACKUPS = f"{ROOT}/backups"
ENV_FILE = f"{ROOT}/.env"
PORT = 8000
BASE_URL = f"http://{HOST.addr}:{PORT}"
CRON_LINE = f"0 3 * * * {ROOT}/deploy/backup_db.sh >> /var/log/magic-master-backup.log 2>&1"
# Where faults keep what they took away, on the host (outside what the checks read).
STASH = "/var/lib/runbook-lab-stash"
# Lab secrets as the runner's environment names them (lab.env).
LAB_ENV = {"ADMIN_JWT": "MM_ADMIN_JWT"}
# Documentation addresses (RFC 5737/3849) standing in for YooKassa's published ones.
WHITELIST = "192.0.2.0/27,198.51.100.7,2001:db8::/32"
CORS = "https://mm.example.com,https://www.mm.example.com"
SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, is_admin INTEGER DEFAULT 0);
CREATE TABLE jobs (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users(id), status TEXT, created_at TEXT);
CREATE TABLE payments (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), amount INTEGER,
  status TEXT);
CREATE TABLE presets (id INTEGER PRIMARY KEY, name TEXT, lufs REAL);
INSERT INTO users (email, is_admin) VALUES ('admin@mm.example.com', 1), ('user@mm.example.com', 0);
INSERT INTO presets (name, lufs) VALUES ('streaming', -14), ('club', -9), ('podcast', -16);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO jobs
  SELECT printf('job-%05d', i), 1 + i % 2, 'done', datetime('now', printf('-%d minutes', i)) FROM n;
INSERT INTO payments (user_id, amount, status) SELECT 2, 990, 'succeeded' FROM jobs LIMIT 40;
"""


# ---- secrets --------------------------------------------------------------------------
def lab_secrets() -> dict[str, str]:
    """Fake per-lab credentials, generated once and kept in the state dir (the admin's token
    is derived from the JWT secret, not stored)."""
    data = envfile.lab_secrets(
        NAME,
        {
            "JWT_SECRET": lambda: secrets.token_urlsafe(32),
            "TELEGRAM_BOT_TOKEN": lambda: f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(26)}",
        },
    )
    data["ADMIN_JWT"] = admin_jwt(data["JWT_SECRET"])
    return data


def admin_jwt(secret: str) -> str:
    """An HS256 token for the admin, as the admin panel's login would give one."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    signed = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '1', 'role': 'admin'})}"
    signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def render_env(values: dict[str, str]) -> str:
    """/opt/magic-master/.env as DEPLOY.md has it, with section 5's production settings set."""
    return envfile.render_env(
        [
            "# Magic Master: production settings (runbook-lab replica, fake per-lab values)",
            f"MAGIC_MASTER_DB_PATH={DB}",
            f"MAGIC_MASTER_TEMP_DIR={TEMP_DIR}",
            f"MAGIC_MASTER_PORT={PORT}",
            f"MAGIC_MASTER_JWT_SECRET={values['JWT_SECRET']}",
            f"MAGIC_MASTER_CORS_ORIGINS={CORS}",
            f"MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST={WHITELIST}",
            f"MAGIC_MASTER_TELEGRAM_BOT_TOKEN={values['TELEGRAM_BOT_TOKEN']}",
            "MAGIC_MASTER_TELEGRAM_CHAT_ID=-1001234567890",
        ]
    )


# ---- the host -------------------------------------------------------------------------
def sh(command: str, *, check: bool = True, timeout: float = 120) -> str:
    return HOST.ssh(command, check=check, timeout=timeout)


def put_files(files: dict[str, tuple[bytes, int]]) -> None:
    """Lay files on the host (path -> content, mode) in one archive, owned by root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (data, mode) in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    with HOST.carrier.session() as client:
        container = HOST.container(client)
        assert container is not None, f"{HOST.label} is not up"
        container.put_archive("/", buffer.getvalue())


def fetch(path: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """GET a JSON path of the service from this machine (status, document)."""
    return get_json(f"{BASE_URL}{path}", timeout)


def healthy() -> bool:
    try:
        code, body = fetch("/api/health", timeout=3)
    except (OSError, ValueError):
        return False
    return code == 200 and body.get("status") == "ok"


TABLES = ("users", "jobs", "payments", "presets")
TABLES_PRESENT = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({})".format(
    ", ".join(f"'{table}'" for table in TABLES)
)


def install(*, strict: bool) -> None:
    """The service's files, user, unit, database, crontab and a first backup; idempotent."""
    values = lab_secrets()
    files = {
        f"{ROOT}/backend/app.py": ((HERE / "app.py").read_bytes(), 0o755),
        f"{ROOT}/deploy/backup_db.sh": ((HERE / "deploy" / "backup_db.sh").read_bytes(), 0o755),
        f"/etc/systemd/system/{UNIT}.service": ((HERE / "deploy" / f"{UNIT}.service").read_bytes(), 0o644),
    }
    have_env = sh(f"test -f {ENV_FILE} && echo yes || echo no").strip() == "yes"
    if strict or not have_env:
        files[ENV_FILE] = (render_env(values).encode(), 0o640)
    put_files(files)
    schema = shlex.quote(SCHEMA)
    sh(
        "id magic >/dev/null 2>&1 || "
        f"useradd --system --home-dir {ROOT} --shell /usr/sbin/nologin magic; "
        f"chgrp magic {ENV_FILE}; mkdir -p {BACKUPS} {STASH}; chown magic:magic {ROOT}/backend; "
        # modes a `chmod` by hand may have taken away (the service reads its code and database there)
        f"chmod 0755 {ROOT} {ROOT}/backend {ROOT}/deploy; "
        # temp_dir is the service's own: a fresh tmpfs came up root's, 0755, even with mode=1777
        # asked (a restarted host), and then every mastering job and backup download died.
        f"chown magic:magic {TEMP_DIR}; chmod 0750 {TEMP_DIR}; "
        # a database missing one of its tables (dropped with sqlite3 by hand) is laid anew
        f'test "$(sqlite3 {DB} {shlex.quote(TABLES_PRESENT)} 2>/dev/null)" = {len(TABLES)} || rm -f {DB}; '
        f"test -f {DB} || {{ sqlite3 {DB}.new {schema} && mv {DB}.new {DB}; }}; "
        f"chown magic:magic {DB}; chmod 640 {DB}; "
        f"(crontab -l 2>/dev/null | grep -vF {shlex.quote(ROOT + '/deploy/backup_db.sh')}; "
        f"echo {shlex.quote(CRON_LINE)}) | crontab -; "
        f"systemctl daemon-reload; systemctl enable --now cron.service {UNIT}.service"
    )
    envfile.publish({variable: values[key] for key, variable in LAB_ENV.items()})


def newest_backup_age_hours() -> float | None:
    said = sh(f"ls -1t {BACKUPS}/backup_*.sqlite3 2>/dev/null | head -n 1 | xargs -r stat -c %Y").strip()
    return (time.time() - int(said)) / 3600 if said else None


def ensure_backup(*, strict: bool) -> None:
    """A fresh, valid backup, as last night's cron run would have left one."""
    age = newest_backup_age_hours()
    if strict or age is None or age > 20:
        sh(f"{ROOT}/deploy/backup_db.sh >/dev/null")


def heal_host(plan: HealPlan) -> None:
    """Undo what faults did on the host: files from the stash, the unit back, the journal fresh."""
    sh(
        f"if [ -e {STASH}/ffmpeg ]; then mv -f {STASH}/ffmpeg /usr/bin/ffmpeg; fi; "
        f"if [ -e {STASH}/magic_master.db ]; then mv -f {STASH}/magic_master.db {DB}; fi; "
        f"rm -f {TEMP_DIR}/ballast-*; "
        f"rm -f {BACKUPS}/backup_*.sqlite3; "  # stale, bad or planted: heal lays a fresh one
        "systemctl unmask magic-master.service 2>/dev/null || true"
    )
    if any(name in plan.book.get("active", []) for name in ("error-burst", "crash-loop")):
        # The journal keeps the fault's ERROR lines for the check's window: start a new one.
        sh("journalctl --rotate >/dev/null 2>&1; journalctl --vacuum-time=1s >/dev/null 2>&1")


class MagicMasterSystem(LabSystem):
    def __init__(self, faults: Sequence[Fault]) -> None:
        super().__init__(name=NAME, hosts=[HOST], faults=faults)

    def converge(self, *, plan: HealPlan | None) -> None:
        HOST.up()
        if plan is not None:
            heal_host(plan)
        install(strict=plan is not None)
        if plan is not None:
            sh(f"systemctl restart {UNIT}.service")  # NRestarts counts from a start by hand
        wait_until(healthy, timeout=60, what=f"{BASE_URL}/api/health to say ok", interval=0.3)
        ensure_backup(strict=plan is not None)

    def service_components(self) -> list[Component]:
        if not HOST.ssh_ok():
            return [Component(f"unit {UNIT}", False, "host not reachable over SSH")]
        state = sh(f"systemctl is-active {UNIT}.service; systemctl is-enabled {UNIT}.service", check=False)
        active, _, enabled = state.strip().partition("\n")
        unit_ok = (active, enabled) == ("active", "enabled")
        lines = [Component(f"unit {UNIT}", unit_ok, f"{active}, {enabled}")]
        try:
            code, body = fetch("/api/health", timeout=3)
            detail = f"{code} {body.get('status')} {json.dumps(body.get('components', {}))}"
            lines.append(Component("health", code == 200 and body.get("status") == "ok", detail))
        except (OSError, ValueError) as exc:
            lines.append(Component("health", False, f"{BASE_URL}/api/health -> {exc}"))
        age = newest_backup_age_hours()
        detail = f"newest {age:.1f} h old" if age is not None else f"no backup_*.sqlite3 in {BACKUPS}"
        lines.append(Component("backups", age is not None and age < 25, detail))
        return lines

    def forget(self) -> None:
        envfile.unpublish(LAB_ENV.values())
