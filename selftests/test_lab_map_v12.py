"""The Map v12 runbook against its lab: green when healthy, red with the right message per fault.

Each fault of `python -m lab faults map-v12` is injected by real means (containers stopped,
paused or recreated from a changed .env, a migration laid, dumps cut or aged), the daily
checklist runs as a user runs it (a pytest subprocess over SSH to the lab's two hosts), and
the set of failing checks must be exactly the fault's expected set. The generic tests come
from selftests/lab_harness.py; this module is Map v12's data, its fingerprint, and a proof
that failures made by hand with plain docker/psql turn the same checks red.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import lab_fingerprint as fingerprint
import pytest
from lab_harness import REPO, LabChecklistTests, outcomes

SYSTEM = "map-v12"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"
NGINX_502 = r"status 502 != 200 \(GET https://198\.18\.1\.2/health, \d+\.\d\ds\); upstream web:8000 down"

# fault -> {check id: pattern its message must match}: found value and threshold.
MESSAGES: dict[str, dict[str, str]] = {
    "web-down": {
        "health": NGINX_502 + r": service web \(map-v12-web-1\) is not running: exited",
        "web-running": r"service web \(map-v12-web-1\) is exited",
        "web-port": r"nginx \(map-v12-nginx-1\) cannot reach web:8000",
    },
    "missing-env-key": {
        "health": NGINX_502,
        "web-env": r"service web \(map-v12-web-1\): SECRET_KEY missing \(values not shown\)",
        # caught between two starts, or in one of the loop's moments of running
        "web-running": r"service web \(map-v12-web-1\) is restarting( \(exit code 1: application error\)"
        + r"| in a loop: running at one look)",
        "gunicorn-boot": r"\d+ lines? of service web \(map-v12-web-1\)'s logs match .* since its start.* > 0",
    },
    "web-hung": {
        "health": r"status 504 != 200 \(GET https://198\.18\.1\.2/health, 3\.\d\ds\); upstream web:8000",
        "web-running": r"service web \(map-v12-web-1\) is paused",
    },
    "db-down": {
        "ready": r"status 503 != 200 .*; components\.db=error components\.redis=ok",
        "db-running": r"service db \(map-v12-db-1\) is exited",
        "health": r"status 503 != 200",
    },
    "redis-down": {
        "ready": r"status 503 != 200 .*; components\.db=ok components\.redis=error",
        "redis-running": r"service redis \(map-v12-redis-1\) is exited",
    },
    "worker-unsubscribed": {"worker-subscribed": r"channel 'map:events' has 0 subscriber\(s\) < 1"},
    "migration-pending": {
        "db-migrations": r"alembic_version is 0003_devices_audit != head 0004_marker_status",
    },
    "metrics-public": {
        "metrics-not-public": r"answered 200 without credentials .*open to anyone .*Prometheus text",
        "web-metrics-private-flag": r"METRICS_ALLOW_PUBLIC=1 != 0",
    },
    "metrics-key-wrong": {"metrics-api-key": r"status 404 != 200 \(GET https://198\.18\.1\.2/metrics"},
    "secret-key-placeholder": {
        "web-env": r"SECRET_KEY is placeholder \(values not shown\)",
    },
    "cookie-not-secure": {
        "web-cookie-secure-flag": r"SESSION_COOKIE_SECURE=0 != 1",
    },
    "bot-key-mismatch": {
        "bot-key-agrees": r"BOT_API_KEY differs between service web \(map-v12-web-1\) and service bot",
    },
    "rate-limit-off": {
        "login-rate-limit": r"attempt 11 within .* answered 401 != 429 .*statuses: 401 x11",
        "chat-rate-limit": r"attempt 121 within .* answered 200 != 429 .*statuses: 200 x121",
    },
    "chat-page-5000": {"chat-page": r"JSON messages has 5000 items > 500"},
    "slow-endpoint": {
        "perf-sanity": r"p95 \d+ms > 2000ms|errors \d+/200|errors \d+ of the first \d+ already exceed"
    },
    "scripts-writable": {"db-mounts": r"`ids=.*` exit 1 != 0"},
    "backup-script-missing": {"backup-script": r"/root/map-v12/deploy/backup_postgres\.sh does not exist"},
    "restore-script-missing": {"restore-script": r"/root/map-v12/deploy/restore_postgres\.sh does not exist"},
    "redis-url-missing": {
        "web-redis-url": r"REDIS_URL missing",
        "worker-subscribed": r"channel 'map:events' has 0 subscriber\(s\) < 1",
    },
    "stale-dump": {"pgdump-fresh": r"newest backup 49\.\dh old > 25h \(/root/map-v12/backups/pgdump_"},
    "corrupt-dump": {
        "pgdump-readable": r"pgdump_\d{8}_\d{6}\.dump is corrupt: pg_restore: error",
        "restore-test": r"pg_restore into runbook_scratch_\w+ failed",
    },
    "dump-missing-offsite": {
        "pgdump-offsite": r"pgdump_\d{8}_\d{6}\.dump is not on backup-host: .* does not exist",
    },
    "restore-drift": {"restore-test": r"admin_audit_log: \d+ restored vs \d+ live"},
}


def docker(*args: str) -> str:
    """Plain docker against the lab server's dockerd, as an operator would type it."""
    from lab.map_v12 import system as lab_map

    done = subprocess.run(
        ["docker", "-H", lab_map.SERVER.dockerd.url, *args], check=True, capture_output=True, text=True
    )
    return done.stdout


class TestMapV12Lab(LabChecklistTests):
    system = SYSTEM
    lab_file = LAB_FILE
    messages = MESSAGES
    # perf-sanity and chat-rate-limit are smoke checks, restore-test an incident one: their faults
    # show only when those run too (the production file's markers stand).
    markers = "daily or smoke or incident"
    min_passed = 35
    # web at 2% of a CPU: alembic inside it and the rate-limit probes through it ran to their
    # deadlines (27 s, 20 s) before perf-sanity, red or green by the moment either way.
    unrun_may_fail = frozenset({"slow-endpoint"})

    @pytest.fixture(autouse=True)
    def fresh_login_window(self, healthy_lab: None) -> Iterator[None]:
        """Each run starts with /login's window empty, as heal leaves it: the rate-limit check
        sends 11 failed logins, and a run within the same minute would start over the limit."""
        from lab.map_v12 import system as lab_map

        with lab_map.SERVER.dockerd.session() as client:
            lab_map.reset_login_limiter(client)
        yield

    def fingerprint(self) -> dict[str, str]:
        from lab.map_v12 import system as lab_map

        docker_url = lab_map.SERVER.dockerd.url
        facts = fingerprint.files(lab_map.PATHS.workdir)
        facts |= fingerprint.files(lab_map.PATHS.offsite)
        facts |= fingerprint.files(lab_map.PATHS.crontab)
        facts |= fingerprint.containers(docker_url)
        facts |= fingerprint.containers(lab_map.BACKUP_HOST.dockerd.url)
        facts |= postgres_tables()
        # Flask-Limiter's windows (LIMITER/...) count every request to a limited endpoint,
        # the checklist's included: the app's own bookkeeping, and the rate-limit check's
        # declared write. Every other key must stay.
        facts |= {
            key: value
            for key, value in fingerprint.redis_keys(docker_url, lab_map.REDIS).items()
            if not key.startswith(f"redis:{lab_map.REDIS}:LIMITER/") and not key.endswith("(keys)")
        }
        return facts

    def test_failures_made_by_hand_turn_the_same_checks_red(self, tmp_path: Path) -> None:
        """Not the lab's injection: a plain `docker stop` of redis turns the same checks red."""
        from lab import api as lab

        try:
            docker("stop", "-t", "2", "map-v12-redis-1")
            _, records, output = self.run_daily(tmp_path)
            failed = outcomes(records, "failed") | outcomes(records, "error")
            assert failed == set(lab.find_fault("redis-down", SYSTEM).expected_failures), output[-3000:]
        finally:
            lab.heal(SYSTEM)

    def test_heal_undoes_what_docker_and_psql_changed_by_hand(self, tmp_path: Path) -> None:
        """Changes nothing in docker's container list shows: alembic_version emptied with psql, web
        disconnected from its network, Redis given a password at run time. The checklist sees
        them; `lab heal` (make test's first step) brings the lab back to green."""
        from lab import api as lab

        try:
            docker(
                "exec", "map-v12-db-1", "psql", "-U", "map", "-d", "map", "-c", "DELETE FROM alembic_version"
            )
            network = docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
                             "map-v12-web-1").strip()  # fmt: skip
            docker("network", "disconnect", network, "map-v12-web-1")
            docker("exec", "map-v12-redis-1", "redis-cli", "CONFIG", "SET", "requirepass", "set-by-hand")
            _, records, output = self.run_daily(tmp_path / "broken")
            failed = outcomes(records, "failed") | outcomes(records, "error")
            assert {"db-migrations", "web-port", "health", "redis-ping"} <= failed, output[-3000:]
        finally:
            lab.heal(SYSTEM)
        code, records, output = self.run_daily(tmp_path / "healed")
        assert code == 0 and outcomes(records, "failed") == set(), output[-3000:]


def postgres_tables() -> dict[str, str]:
    """A hash of every table's rows in the live database (read through psql in db)."""
    from lab.map_v12 import system as lab_map

    with lab_map.SERVER.dockerd.session() as client:
        tables = lab_map.psql(
            client, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).split()
        return {
            f"postgres:map:{table}": lab_map.psql(
                client, f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM \"{table}\" AS t"
            )
            for table in tables
        }
