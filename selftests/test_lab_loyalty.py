"""The Loyalty API runbook against its lab: green when healthy, red with the right message per fault.

Each fault of `python -m lab faults loyalty-api` is made by real means (containers stopped or
recreated from a changed .env.production, lock waits in PostgreSQL under real requests, outbox
events the real worker fails to deliver, a migration folder or row, dumps aged, damaged or cut),
the daily checklist runs as a user runs it, and the failing checks must be exactly the fault's.
The metric rates are judged by the lab's real Prometheus here; the suite's own samples (no
Prometheus) are proven against the same api below: baseline, a real 5xx burst, a counter reset.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import lab_fingerprint as fingerprint
from lab_harness import REPO, LabChecklistTests, lab_environment, outcomes, run_checklist

SYSTEM = "loyalty-api"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"
PROMETHEUS = r"\(Prometheus http://198\.18\.2\.2:9090/\)"
REFUSED = r"failed: ConnectError: \[Errno 111\] Connection refused"
JOB = r'\{job=~"loyalty-api"\}'  # the rates selectors' job (prometheus_job)
NO_EXTERNAL = r"no metric loyalty_outbox_pending, loyalty_outbox_dead_total, external_requests_total"

# fault -> {check id: pattern its message must match}: found value and threshold.
MESSAGES: dict[str, dict[str, str]] = {
    "api-down": {
        "api-running": r"service api \(loyalty-api-1\) is exited",
        "health": r"GET http://198\.18\.2\.2:3000/health " + REFUSED,
        "smoke-check": r"FAIL GET http://198\.18\.2\.2:3000/health: HTTP 000",
        "smoke-integrations": r"FAIL step code: POST http://198\.18\.2\.2:3000/api/integrations/code: "
        + r"HTTP 000",
        "prisma-migrations": r"service api \(loyalty-api-1\) is exited",
    },
    "api-crash-loop": {
        "api-restarts": r"restarted \d+ times in the last 1h > 0 by its restart policy after a crash "
        + r"\(exit codes 1\b",
        "api-running": r"service api \(loyalty-api-1\) is restarting",
        "health": r"GET http://198\.18\.2\.2:3000/health failed",
    },
    "http-5xx-burst": {
        "http-5xx-rate": r'http_requests_total\{job=~"loyalty-api",status=~"5\.\."\} '
        + r"rose \d+(\.\d+)?/min > 2/min over 10m "
        + PROMETHEUS
    },
    "slow-requests": {
        "http-slow-rate": "http_slow_requests_total" + JOB + r" rose \d+(\.\d+)?/min > 1/min over 10m"
    },
    "db-down": {
        "postgres-running": r"postgres is exited \(exit code (0|137)",  # 137: a client held on past 5 s
        "ready": r"status 503 != 200",
        "pg-isready": r"exit \d+ != 0",
        "db-select-one": r"exit \d+ != 0",
        "metrics-present": NO_EXTERNAL,
        "smoke-check": r"FAIL GET http://198\.18\.2\.2:3000/ready: HTTP 503",
        "smoke-integrations": r"FAIL step code: .*HTTP 500 != 200",
    },
    "db-auth-failures": {
        "postgres-fatal": r"\d+ lines? of postgres's logs match '\(FATAL\|PANIC\): +' in the last 1h > 5",
    },
    "redis-down": {"redis-ping": r"service redis \(loyalty-redis-1\) is exited"},
    "workers-disabled": {
        "worker-env": r"service worker \(loyalty-worker-1\): WORKERS_ENABLED=0 != 1",
        "outbox-pending-growth": "loyalty_outbox_pending" + JOB + r" grew by \d+(\.\d+)? > 5 over 10m",
    },
    "outbox-dead-rising": {
        "outbox-dead-growth": "loyalty_outbox_dead_total" + JOB + r" grew by \d+(\.\d+)? > 5 over 10m",
        "external-errors": r"provider=merchant_webhook",
    },
    "external-429-storm": {"external-rate-limited": r"provider=merchant_webhook"},
    "external-http-error": {"external-errors": r"provider=merchant_webhook"},
    "migration-pending": {
        "prisma-migrations": r"_prisma_migrations: 1 not applied: 20240701000000_loyalty_tiers"
    },
    "migration-failed": {
        "prisma-migrations": r"unfinished \(failed or still running\): 20240620000000_backfill_tiers"
    },
    "maintenance-mode": {
        "maintenance-off": r"MAINTENANCE_MODE=1 != 0",
        "smoke-integrations": r"FAIL step code: .*HTTP 503 != 200",
    },
    "read-only-mode": {
        "read-only-off": r"READ_ONLY_MODE=1 != 0",
        "smoke-integrations": r"FAIL step code: .*HTTP 403 != 200",
    },
    "notify-token-missing": {"notify-config": r"TELEGRAM_NOTIFY_BOT_TOKEN missing \(values not shown\)"},
    "metrics-token-wrong": {
        "metrics-access": r"status 401 != 200 \(GET http://198\.18\.2\.2:3000/metrics with X-Metrics-Token",
        "metrics-present": r"status 401 != 200",
        "smoke-check": r"FAIL GET http://198\.18\.2\.2:3000/metrics: HTTP 401",
    },
    "alert-chat-missing": {"alerts-config": r"ALERT_TELEGRAM_CHAT_ID missing \(values not shown\)"},
    "dump-stale": {
        "backup-fresh": r"newest backup 30\.\dh old > 25h \(/root/loyalty/backups/backup_\d{8}\.sql\.gz\)"
    },
    "dump-corrupt": {"backup-valid": r"backup_\d{8}\.sql\.gz is corrupt: BadGzipFile: CRC check failed"},
    "dump-truncated": {"backup-valid": r"is cut short: no '-- PostgreSQL database dump complete' at its end"},
}


def postgres_tables() -> dict[str, str]:
    """A hash of every table's rows in the live database (read through psql in postgres)."""
    from lab.loyalty_api import system as loyalty

    with loyalty.SERVER.dockerd.session() as client:
        tables = loyalty.psql(
            client, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
        return {
            f"postgres:loyalty:{table}": loyalty.psql(
                client, f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM \"{table}\" AS t"
            )
            for table in tables.split()
        }


class TestLoyaltyLab(LabChecklistTests):
    system = SYSTEM
    lab_file = LAB_FILE
    messages = MESSAGES
    # smoke-integrations is marked smoke and incident in production: the lab runs those too.
    markers = "daily or smoke or incident"
    min_passed = 27

    def fingerprint(self) -> dict[str, str]:
        from lab.loyalty_api import system as loyalty

        facts = fingerprint.files(loyalty.PATHS.workdir)
        facts |= fingerprint.containers(loyalty.SERVER.dockerd.url)
        # The worker and the checklist's own requests change nothing in these tables; the api's
        # request counters are in its memory and Prometheus' TSDB, which are not the system's data.
        facts |= postgres_tables()
        return facts

    def test_rates_from_the_suites_own_samples(self, healthy_lab: None, tmp_path: Path) -> None:
        """Without Prometheus: baseline, then a real 5xx burst seen as a rate, then a counter reset
        that neither hides the burst nor turns it negative."""
        from lab import api as lab
        from lab.core import wait_until
        from lab.loyalty_api import faults
        from lab.loyalty_api import system as loyalty

        overlay = tmp_path / "loyalty-scrape.yml"
        overlay.write_text(
            f"extends: {LAB_FILE}\n"
            # its own scrape has no Prometheus job label: the selector's job matches the empty one
            "checks:\n  rates:\n    - id: http-5xx-rate\n      prometheus: null\n"
            '      labels: {job: ""}\n'
            '      scrape: {url: "http://198.18.2.2:3000/metrics", '
            'headers: {X-Metrics-Token: "${LOYALTY_METRICS_TOKEN}"}}\n',
            encoding="utf-8",
        )
        reports = tmp_path / "reports"  # one reports dir: its .state keeps the samples between runs

        def rate() -> tuple[str, str]:
            _, records, _ = run_checklist(reports, "-k", "http-5xx-rate", systems=overlay)
            return records["http-5xx-rate"]["outcome"], records["http-5xx-rate"]["message"]

        outcome, message = rate()
        assert (outcome, "baseline recorded" in message) == ("passed", True), message
        try:
            lab.break_fault(SYSTEM, "http-5xx-burst")  # booked: heal then empties Prometheus too
            outcome, message = rate()
            assert outcome == "failed", message
            assert "GET http://198.18.2.2:3000/metrics" in message and "/min > 2/min" in message, message
            with loyalty.SERVER.dockerd.session() as client:  # the process restarts: counters from 0
                client.containers.get(loyalty.API).restart(timeout=5)
            wait_until(lambda: faults.answers("/health"), timeout=30, what="the api")
            # 40 errors, then the counter back at 0: a reset, not -40. As in Prometheus, the burst
            # before it still counts, and what the new process counts adds to it.
            outcome, message = rate()
            assert outcome == "failed" and re.search(r"rose \d+(\.\d+)?/min > 2/min", message), message
        finally:
            lab.heal(SYSTEM)

    def test_failures_made_by_hand_turn_the_same_checks_red(self, healthy_lab: None, tmp_path: Path) -> None:
        """Plain docker on the server, without `lab break`: the checks see the symptom."""
        from lab import api as lab
        from lab.loyalty_api import system as loyalty

        env = {**lab_environment(), "DOCKER_HOST": loyalty.SERVER.dockerd.url}
        subprocess.run(["docker", "stop", "-t", "2", loyalty.REDIS], env=env, check=True, capture_output=True)
        try:
            code, records, output = run_checklist(tmp_path, systems=LAB_FILE)
        finally:
            lab.heal(SYSTEM)
        assert outcomes(records, "failed") == {"redis-ping"}, output[-3000:]
        assert records["redis-ping"]["severity"] == "P2" and code == 1

    def test_the_run_during_an_outage_is_not_the_next_runs_slow_requests(
        self, healthy_lab: None, tmp_path: Path
    ) -> None:
        """`docker pause postgres` by hand: the run during it waits on the api (its own requests and
        its smoke script's curls, `requests_to`), and the api counts them as slow. After the fix
        the next run is green: http-slow-rate leaves this suite's own slow requests out, the
        script's too (before `requests_to`, 1.41/min > 1/min: the previous run's requests)."""
        from lab import api as lab
        from lab.loyalty_api import system as loyalty

        env = {**lab_environment(), "DOCKER_HOST": loyalty.SERVER.dockerd.url}

        def docker(*args: str) -> None:
            subprocess.run(["docker", *args], env=env, check=True, capture_output=True)

        docker("pause", loyalty.POSTGRES)
        try:
            _, records, output = run_checklist(tmp_path, systems=LAB_FILE)
            assert {"pg-isready", "ready", "smoke-check"} <= outcomes(records, "failed"), output[-3000:]
            docker("unpause", loyalty.POSTGRES)
            lab.heal(SYSTEM)
            code, records, output = run_checklist(tmp_path, systems=LAB_FILE)  # the same reports folder
            assert outcomes(records, "failed") == set() and code == 0, output[-3000:]
        finally:
            # the api's slow counter and Prometheus' history of it start anew for the tests after
            # this one, whose reports folders do not know these requests were the suite's
            docker("rm", "-f", loyalty.API, loyalty.PROMETHEUS)
            lab.heal(SYSTEM)
