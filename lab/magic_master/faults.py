"""The failures of the Magic Master runbook, each made on the host the way it happens there.

Service faults use systemctl; settings faults edit /opt/magic-master/.env and restart the unit
(as an operator applying a change would: the checks read the running unit's
environment); file faults move, chmod or overwrite the real files,
keeping what they take away in the host's stash for heal. Check ids are
systems/magic-master.yml's.
"""

from __future__ import annotations

import json
import shlex
import urllib.request

from lab.core import Fault, fault, wait_until
from lab.magic_master import system as mm

HEALTH_DOWN = {
    "health-status", "health-database", "health-disk", "health-ffmpeg", "health-fields", "status-page",
    "metrics-json"
}  # fmt: skip
# The settings are read from the running unit's environment: a stopped unit has none to judge.
UNIT_SETTINGS = {"cors-origins", "yookassa-whitelist", "telegram-notify"}
SERVICE_DOWN = {*HEALTH_DOWN, "cors-preflight", "admin-backup-api", *UNIT_SETTINGS}


def sh(command: str) -> str:
    return mm.sh(command)


def set_env(key: str, value: str | None) -> None:
    """Change (or with None drop) one key of the service's .env, in place."""
    drop = f"grep -v '^{key}=' {mm.ENV_FILE} > {mm.ENV_FILE}.new"
    add = f"; echo {shlex.quote(f'{key}={value}')} >> {mm.ENV_FILE}.new" if value is not None else ""
    new = f"{mm.ENV_FILE}.new"
    sh(f"{drop}{add}; chgrp magic {new}; chmod 640 {new}; mv -f {new} {mm.ENV_FILE}")


def restart_and_wait() -> None:
    sh(f"systemctl restart {mm.UNIT}.service")
    wait_until(answers, timeout=30, what=f"{mm.BASE_URL}/api/health to answer", interval=0.3)


def answers() -> bool:
    try:
        mm.fetch("/api/health", timeout=2)
    except (OSError, ValueError):
        return False
    return True


def n_restarts() -> int:
    said = sh(f"systemctl show -p NRestarts --value {mm.UNIT}.service").strip()
    return int(said) if said.isdigit() else 0


# ---- the injections -------------------------------------------------------------------
def service_stopped() -> None:
    sh(f"systemctl stop {mm.UNIT}.service")


def crash_loop() -> None:
    """A bad setting deployed: the app exits at start, Restart=always starts it again and again."""
    set_env("MAGIC_MASTER_PORT", "80OO")
    sh(f"systemctl restart {mm.UNIT}.service")
    wait_until(lambda: n_restarts() >= 6, timeout=60, what=f"{mm.UNIT} to restart 6 times", interval=0.5)


def error_burst() -> None:
    """Eight mastering jobs fail (their upload is gone): ffmpeg's error, logged as ERROR, each time."""
    for number in range(8):
        request = urllib.request.Request(
            f"{mm.BASE_URL}/api/master",
            data=json.dumps({"upload": f"lost-upload-{number}.wav"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except urllib.error.HTTPError as exc:
            assert exc.code == 500, exc
    wait_until(
        lambda: int(sh(f"journalctl -u {mm.UNIT} --grep 'ERROR' -o cat | wc -l").strip()) >= 8,
        timeout=20,
        what="8 ERROR lines in the journal",
    )


def database_missing() -> None:
    sh(f"mv -f {mm.DB} {mm.STASH}/magic_master.db")


def database_unreadable() -> None:
    """Restored by hand as root and left root's: the service user cannot open it."""
    sh(f"chown root:root {mm.DB} && chmod 600 {mm.DB}")


def database_corrupt() -> None:
    """Three pages deep in the jobs table overwritten (a disk or a copy gone wrong)."""
    sh(
        f"cp -p {mm.DB} {mm.STASH}/magic_master.db && "
        f"head -c 12288 /dev/urandom | dd of={mm.DB} bs=4096 seek=20 count=3 conv=notrunc status=none"
    )


def temp_dir_low() -> None:
    """Leftover renders fill temp_dir: under 200 MB free on its 256 MB filesystem."""
    sh(f"head -c 80M /dev/zero > {mm.TEMP_DIR}/ballast-render.wav")


def ffmpeg_missing() -> None:
    sh(f"mv -f /usr/bin/ffmpeg {mm.STASH}/ffmpeg")


def cors_wildcard() -> None:
    set_env("MAGIC_MASTER_CORS_ORIGINS", "*")
    restart_and_wait()


def cors_unset() -> None:
    set_env("MAGIC_MASTER_CORS_ORIGINS", None)
    restart_and_wait()


def whitelist_empty() -> None:
    set_env("MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST", "")
    restart_and_wait()


def whitelist_invalid() -> None:
    set_env("MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST", "192.0.2.0/27,192.0.2.300,yookassa.example.com")
    restart_and_wait()


def telegram_placeholder() -> None:
    """Telegram configured with the .env.example's placeholder token: notifications cannot go out."""
    set_env("MAGIC_MASTER_TELEGRAM_BOT_TOKEN", "changeme")
    restart_and_wait()


def backup_stale() -> None:
    """cron stopped making backups a day and a half ago."""
    sh(f"for f in {mm.BACKUPS}/backup_*.sqlite3; do touch -d '30 hours ago' \"$f\"; done")


def backup_not_database() -> None:
    """The newest backup is an HTML error page (a download that went wrong), not SQLite."""
    sh(
        "printf '<html><body>502 Bad Gateway</body></html>\\n' "
        f"> {mm.BACKUPS}/backup_$(date -u +%Y%m%d_%H%M)z.sqlite3"
    )


def cron_missing() -> None:
    sh("crontab -l | grep -v 'deploy/backup_db.sh' | crontab -")


FAULTS: list[Fault] = [
    fault("service-stopped", "magic-master stopped (systemctl stop)", fails={"unit-active", *SERVICE_DOWN},
          inject=service_stopped),
    # The settings checks read the running process's environment: between two restarts the
    # process lives for a moment, and a check that looks then finds its settings.
    fault("crash-loop", "a bad setting: the app exits at start and systemd restarts it for ever",
          fails={"unit-active", "journal-errors", *(SERVICE_DOWN - UNIT_SETTINGS)},
          may_fail=UNIT_SETTINGS, inject=crash_loop),
    fault("error-burst", "mastering jobs failing: ERROR lines in the unit's journal",
          fails={"journal-errors"}, inject=error_burst),
    fault("database-missing", "the SQLite file is gone from its configured path",
          fails={"health-status", "health-database", "db-integrity", "db-readable", "admin-backup-api"},
          inject=database_missing),
    fault("database-unreadable", "the SQLite file is root's, mode 600: the service user cannot open it",
          fails={"health-status", "health-database", "db-readable", "admin-backup-api"},
          inject=database_unreadable),
    fault("database-corrupt", "pages of the SQLite file overwritten; the service's own query still works",
          fails={"db-integrity"}, inject=database_corrupt),
    fault("temp-dir-low", "temp_dir has less than 200 MB free (health disk: low)",
          fails={"health-status", "health-disk", "temp-space"}, inject=temp_dir_low),
    fault("ffmpeg-missing", "ffmpeg removed from the service's PATH",
          fails={"health-status", "health-ffmpeg", "ffmpeg-on-path"}, inject=ffmpeg_missing),
    fault("cors-wildcard", "MAGIC_MASTER_CORS_ORIGINS=* in production",
          fails={"cors-origins", "cors-preflight"}, inject=cors_wildcard),
    fault("cors-unset", "MAGIC_MASTER_CORS_ORIGINS not set: every origin allowed",
          fails={"cors-origins", "cors-preflight"}, inject=cors_unset),
    fault("whitelist-empty", "MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST empty",
          fails={"yookassa-whitelist"}, inject=whitelist_empty),
    fault("whitelist-invalid", "the YooKassa whitelist has entries that are not IPs or networks",
          fails={"yookassa-whitelist"}, inject=whitelist_invalid),
    fault("backup-stale", "no backup for 30 hours (cron stopped running it)",
          fails={"backup-fresh"}, inject=backup_stale),
    fault("backup-not-database", "the newest backup_*.sqlite3 is not a SQLite database",
          fails={"backup-valid"}, inject=backup_not_database,
          replaces={"backup-stale": "it writes a new newest backup now: the newest is no longer stale"}),
    fault("telegram-placeholder", "MAGIC_MASTER_TELEGRAM_BOT_TOKEN=changeme: configured, but not for real",
          fails={"telegram-notify"}, inject=telegram_placeholder),
    fault("cron-missing", "the backup_db.sh line is gone from root's crontab",
          fails={"backup-cron"}, inject=cron_missing),
]  # fmt: skip
