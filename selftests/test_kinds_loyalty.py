"""The generic kinds the Loyalty API runbook (issue 9) needs, each proved both ways on loopback.

backups of plain `pg_dump | gzip` files (a real pg_dump of a real PostgreSQL 15),
the postgres kind's `prisma` aspect (a real `_prisma_migrations` table), metric
rates from the suite's own samples and from a real Prometheus server, and the
HTTP scenario kind (selftests/loyalty_app.py).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter
from pydantic import ValidationError

from runbook.checks import backups, metrics, postgres, rates, restore, scenario
from runbook.checks.backups import BackupCheck
from runbook.checks.metrics import MetricsCheck
from runbook.checks.postgres import PostgresCheck
from runbook.checks.rates import RatesCheck
from runbook.checks.restore import RestoreCheck
from runbook.checks.scenario import ScenarioCheck
from runbook.errors import CheckError, CheckFailed, CheckPassed
from runbook.host import prometheus, samples
from runbook.host.target import Target
from selftests.data_servers import FakeDocker, Postgres, free_port, install_fake_docker, wait_for
from selftests.loyalty_app import API_KEY, CUSTOMER_ID, METRICS_TOKEN, USER_TOKEN, LoyaltyApp, serve
from selftests.prometheus_server import start_prometheus

ROOT = Path(__file__).resolve().parents[1]
COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "Бэкапы", "remedy": "fix it"}


# -- backups: backup_YYYYMMDD.sql.gz ---------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_dump(postgres_server: Postgres) -> bytes:
    """A real plain-text `pg_dump` of the database, as scripts/backup.sh pipes it to gzip."""
    environment = {**os.environ, "PGPASSWORD": postgres_server.password}
    command = ["pg_dump", "-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", postgres_server.user]
    done = subprocess.run(
        [*command, postgres_server.database], env=environment, capture_output=True, check=True, timeout=120
    )
    return done.stdout


def put_sql_gz(folder: Path, text: bytes, name: str = "backup_20261123.sql.gz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(text))
    return path


def sql_gz_check(folder: Path, **fields: Any) -> BackupCheck:
    return BackupCheck(
        **COMMON, id="backup", directory=str(folder), pattern="backup_*.sql.gz", format="sql_gz", **fields
    )


@pytest.mark.slow
def test_a_whole_sql_gz_dump_is_fresh_and_reads(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    put_sql_gz(tmp_path, plain_dump)
    backups.verify(sql_gz_check(tmp_path, max_age_hours=25), local)
    backups.verify(sql_gz_check(tmp_path, integrity=True), local)


@pytest.mark.slow
def test_a_dump_cut_short_lacks_its_trailer(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    """gzip of a dump that pg_dump never finished: the gzip is whole, the SQL is not."""
    cut = plain_dump[: plain_dump.rindex(b"-- PostgreSQL database dump complete")]
    lines = cut.splitlines()
    tables = sum(line.startswith(b"CREATE TABLE ") for line in lines)
    copies = sum(line.startswith(b"COPY ") for line in lines)
    assert tables >= 4 and copies >= 4
    put_sql_gz(tmp_path, cut)
    with pytest.raises(CheckFailed) as failed:
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)
    assert failed.value.found == (
        f"{tmp_path}/backup_20261123.sql.gz is cut short: no '-- PostgreSQL database dump complete' "
        f"at its end ({tables} CREATE TABLE, {copies} COPY read)"
    )


def test_a_truncated_gzip_is_corrupt(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    path = put_sql_gz(tmp_path, plain_dump)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckFailed) as failed:
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)
    assert failed.value.found == (
        f"{path} is corrupt: EOFError: Compressed file ended before the end-of-stream marker was reached"
    )


def test_a_flipped_byte_fails_the_crc(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    path = put_sql_gz(tmp_path, plain_dump)
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # in the stored CRC-32
    path.write_bytes(bytes(data))
    with pytest.raises(CheckFailed, match=r"is corrupt: BadGzipFile: CRC check failed"):
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (b"hello\n", "does not start as a pg_dump does (no '-- PostgreSQL database dump' header)"),
        (
            b"--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n\n"
            b"--\n-- PostgreSQL database dump complete\n",
            "holds no CREATE TABLE and no COPY statement",
        ),
    ],
)
def test_not_a_dump_or_an_empty_one(text: bytes, said: str, tmp_path: Path, local: Target) -> None:
    path = put_sql_gz(tmp_path, text)
    with pytest.raises(CheckFailed) as failed:
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)
    assert failed.value.found == f"{path} {said}"


def sql_gz_restore(postgres_server: Postgres, folder: Path) -> RestoreCheck:
    return RestoreCheck(
        **COMMON,
        id="restore",
        directory=str(folder),
        pattern="backup_*.sql.gz",
        format="sql_gz",
        dsn=postgres_server.dsn(),
        tables=["users", "markers"],
    )


def scratch_left(postgres_server: Postgres) -> list[str]:
    return [name for name in postgres_server.databases() if name.startswith(restore.SCRATCH_PREFIX)]


@pytest.mark.slow
def test_a_sql_gz_dump_restores_into_a_scratch_database(
    postgres_server: Postgres, plain_dump: bytes, tmp_path: Path, local: Target
) -> None:
    put_sql_gz(tmp_path, plain_dump)
    restore.verify(sql_gz_restore(postgres_server, tmp_path), local)
    assert scratch_left(postgres_server) == []


@pytest.mark.slow
def test_a_sql_gz_dump_that_does_not_restore(
    postgres_server: Postgres, plain_dump: bytes, tmp_path: Path, local: Target
) -> None:
    renamed = plain_dump.replace(b"CREATE TABLE public.markers (", b"CREATE TABLE public.markers_x (", 1)
    path = put_sql_gz(tmp_path, renamed)
    failed_restore = r'^psql into runbook_scratch_[0-9a-f]{12} failed: .*"public.markers" does not exist'
    with pytest.raises(CheckFailed, match=failed_restore):
        restore.verify(sql_gz_restore(postgres_server, tmp_path), local)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckFailed, match=r"is corrupt: EOFError: Compressed file ended"):
        restore.verify(sql_gz_restore(postgres_server, tmp_path), local)
    assert scratch_left(postgres_server) == []


# -- postgres: Prisma migrations ---------------------------------------------------------------------

SHIPPED = ["20240101000000_init", "20240301000000_outbox", "20240615000000_add_indexes"]
PRISMA_TABLE = """
CREATE TABLE _prisma_migrations (
    id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
    migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0
)"""


@pytest.fixture
def loyalty_db(postgres_server: Postgres) -> Iterator[str]:
    """A `loyalty` database with Prisma's own table, every shipped migration applied; its DSN."""
    with postgres_server.superuser("postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS loyalty")
        admin.execute(f"CREATE DATABASE loyalty OWNER {postgres_server.user}")
    with postgres_server.superuser("loyalty") as admin:
        admin.execute(PRISMA_TABLE)
        admin.execute(f"ALTER TABLE _prisma_migrations OWNER TO {postgres_server.user}")
        for number, name in enumerate(SHIPPED):
            applied(admin, number, name, started="2024-07-01 10:00:00+00")
    yield postgres_server.dsn().rsplit("/", 1)[0] + "/loyalty"
    with postgres_server.superuser("postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS loyalty WITH (FORCE)")


def applied(connection: Any, number: int, name: str, *, started: str, finished: bool = True) -> None:
    connection.execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at)"
        " VALUES (%s, 'x', %s, %s, CASE WHEN %s THEN now() END)",
        (f"{name}-{number}", name, started, finished),
    )


def migrations_folder(root: Path, names: list[str]) -> Path:
    folder = root / "prisma" / "migrations"
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "migration.sql").write_text("SELECT 1;\n")
    (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return folder


def prisma_check(dsn: str, **source: Any) -> PostgresCheck:
    return PostgresCheck(**COMMON, id="prisma-migrations", dsn=dsn, prisma=source)


def test_every_shipped_migration_applied(loyalty_db: str, tmp_path: Path, local: Target) -> None:
    folder = migrations_folder(tmp_path, SHIPPED)
    postgres.verify(prisma_check(loyalty_db, migrations_dir=str(folder)), local)
    postgres.verify(prisma_check(loyalty_db, migrations=SHIPPED), local)


def test_a_shipped_migration_not_applied(loyalty_db: str, tmp_path: Path, local: Target) -> None:
    folder = migrations_folder(tmp_path, [*SHIPPED, "20240701000000_loyalty_tiers"])
    with pytest.raises(CheckFailed) as failed:
        postgres.verify(prisma_check(loyalty_db, migrations_dir=str(folder)), local)
    assert failed.value.found == "_prisma_migrations: 1 not applied: 20240701000000_loyalty_tiers"
    assert failed.value.expected == (
        f"_prisma_migrations: the 4 migrations of {folder} applied, none unfinished or rolled back"
    )


@pytest.mark.slow
def test_a_failed_and_a_rolled_back_migration(
    loyalty_db: str, postgres_server: Postgres, local: Target
) -> None:
    with postgres_server.superuser("loyalty") as admin:
        admin.execute(
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = %s", (SHIPPED[1],)
        )
        applied(admin, 9, "20240801000000_broken", started="2024-08-01 03:00:00+00", finished=False)
    check = prisma_check(loyalty_db, migrations=[*SHIPPED, "20240801000000_broken"])
    with pytest.raises(CheckFailed) as failed:
        postgres.verify(check, local)
    assert failed.value.found == (
        "_prisma_migrations: unfinished (failed or still running): 20240801000000_broken "
        "(started 2024-08-01 03:00:00Z); rolled back and not applied again: 20240301000000_outbox"
    )
    with postgres_server.superuser("loyalty") as admin:
        applied(admin, 10, SHIPPED[1], started="2024-08-02 00:00:00+00")  # re-applied after the rollback
        admin.execute("DELETE FROM _prisma_migrations WHERE migration_name = '20240801000000_broken'")
    postgres.verify(prisma_check(loyalty_db, migrations=SHIPPED), local)


@pytest.mark.slow
def test_applied_but_not_shipped_and_never_ran(
    loyalty_db: str, postgres_server: Postgres, local: Target
) -> None:
    with pytest.raises(CheckFailed) as failed:
        postgres.verify(prisma_check(loyalty_db, migrations=SHIPPED[:2]), local)
    assert failed.value.found == (
        "_prisma_migrations: applied but not shipped (an older image?): 20240615000000_add_indexes"
    )
    with pytest.raises(CheckFailed, match="no table _prisma_migrations: prisma migrate deploy never ran"):
        postgres.verify(prisma_check(postgres_server.dsn(), migrations=SHIPPED), local)


def test_the_folders_are_listed_inside_the_api_service(
    loyalty_db: str, tmp_path: Path, local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker: FakeDocker = install_fake_docker(tmp_path / "docker-bin", monkeypatch)
    docker.add("map-v12-api-1", service="api")
    folder = migrations_folder(tmp_path, SHIPPED)
    source = {"service": "api", "project": "map-v12", "migrations_dir": str(folder)}
    postgres.verify(prisma_check(loyalty_db, **source), local)
    with pytest.raises(CheckError, match=r"cannot list /nowhere in compose service api .*No such file"):
        postgres.verify(prisma_check(loyalty_db, **{**source, "migrations_dir": "/nowhere"}), local)


def test_a_prisma_source_is_one_of_them() -> None:
    with pytest.raises(ValidationError, match=r"set migrations .* or container/service"):
        prisma_check("x", migrations=SHIPPED, container="api")
    with pytest.raises(ValidationError, match="String should match pattern"):
        prisma_check("x", migrations=["-rf"])


# -- rates: the suite's own samples -------------------------------------------------------------------


@pytest.fixture(scope="module")
def loyalty_server() -> Iterator[tuple[LoyaltyApp, str]]:
    app = LoyaltyApp()
    yield from ((app, base) for base in serve(app))


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing between the runner and loopback."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def loyalty(
    loyalty_server: tuple[LoyaltyApp, str], no_proxy: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[LoyaltyApp, str]:
    """The API with fresh metrics and purchases, no proxy before loopback, samples in tmp_path."""
    monkeypatch.setattr(samples.STORE, "folder", tmp_path / ".state")
    app, base = loyalty_server
    app.restart()
    app.purchases.clear()
    app.slow_ms, app.balance_broken = 0, False
    return app, base


class Clock:
    """The runner's clock as the rates kind reads it, moved on by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_800_000_000.0
        monkeypatch.setattr(rates.time, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def rates_check(base: str, **fields: Any) -> RatesCheck:
    scrape = {"url": f"{base}/metrics", "headers": {"X-Metrics-Token": METRICS_TOKEN}}
    return RatesCheck(**{**COMMON, "id": "http-5xx", "scrape": scrape, **fields})


FIVE_XX = {"metric": "http_requests_total", "labels": {"status": "5.."}, "max_per_minute": 5}


def test_the_first_run_records_a_baseline_and_passes(
    loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target
) -> None:
    app, base = loyalty
    app.metrics.requests.labels("GET", "500").inc(2)
    with pytest.raises(CheckPassed) as passed:
        rates.verify(rates_check(base, **FIVE_XX), local)
    assert passed.value.note == (
        f'baseline recorded: 1 series of http_requests_total{{status=~"5.."}} from GET {base}/metrics; '
        "the next run computes the rate"
    )
    stored = json.loads((samples.STORE.folder / "samples.json").read_text())  # type: ignore[operator]
    assert len(stored["sources"]) == 1


def test_5xx_per_minute_since_the_previous_runs(
    loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target
) -> None:
    app, base = loyalty
    check = rates_check(base, **FIVE_XX)
    with pytest.raises(CheckPassed):
        rates.verify(check, local)
    clock.advance(60)
    app.metrics.requests.labels("GET", "500").inc(3)  # a series born since the baseline: from 0
    rates.verify(check, local)
    clock.advance(60)
    app.metrics.requests.labels("POST", "502").inc(12)
    with pytest.raises(CheckFailed) as failed:
        rates.verify(check, local)
    source = f"samples of this suite, GET {base}/metrics"
    assert (
        failed.value.found == f'http_requests_total{{status=~"5.."}} rose 7.5/min > 5/min over 2m ({source})'
    )
    assert failed.value.expected == (
        f'http_requests_total{{status=~"5.."}} rises at most 5/min over 2m ({source})'
    )


def test_a_restart_resets_counters_as_prometheus_counts_it(
    loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target
) -> None:
    app, base = loyalty
    check = rates_check(base, metric="loyalty_outbox_dead_total", max_increase=5)
    app.metrics.dead.inc(40)
    with pytest.raises(CheckPassed):
        rates.verify(check, local)
    clock.advance(120)
    app.restart()  # 40 -> 0, then 4 new dead events: an increase of 4, not -36
    app.metrics.dead.inc(4)
    rates.verify(check, local)
    clock.advance(120)
    app.metrics.dead.inc(3)
    with pytest.raises(CheckFailed) as failed:
        rates.verify(check, local)
    assert failed.value.found == (
        f"loyalty_outbox_dead_total grew by 7 > 5 over 4m (samples of this suite, GET {base}/metrics)"
    )


def test_only_the_window_counts(loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target) -> None:
    """Samples older than the window's reference are dropped: old growth stops counting."""
    app, base = loyalty
    check = rates_check(base, metric="loyalty_outbox_dead_total", max_increase=5, window="10m")
    with pytest.raises(CheckPassed):
        rates.verify(check, local)
    clock.advance(60)
    app.metrics.dead.inc(9)
    with pytest.raises(CheckFailed, match="grew by 9 > 5 over 1m"):
        rates.verify(check, local)
    clock.advance(660)  # the reference is now the run 11 minutes ago, after the 9
    rates.verify(check, local)


def test_errors_by_provider_name_the_provider(
    loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target
) -> None:
    app, base = loyalty
    check = rates_check(
        base,
        metric="external_requests_total",
        labels={"result": "http_error|error"},
        by=["provider"],
        max_increase=0,
    )
    app.metrics.external.labels("merchant_webhook", "error", "0").inc(5)
    with pytest.raises(CheckPassed):
        rates.verify(check, local)
    clock.advance(300)
    app.metrics.external.labels("telegram", "http_error", "502").inc(2)
    app.metrics.external.labels("telegram", "error", "0").inc(1)
    with pytest.raises(CheckFailed) as failed:
        rates.verify(check, local)
    assert failed.value.found == (
        'external_requests_total{result=~"http_error|error"} by provider grew by provider=telegram: 3 > 0 '
        f"over 5m (samples of this suite, GET {base}/metrics)"
    )
    assert failed.value.evidence["each group"] == "provider=telegram 3\nprovider=merchant_webhook 0"


def test_a_gauge_that_must_not_grow(loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target) -> None:
    app, base = loyalty
    check = rates_check(base, metric="loyalty_outbox_pending", type="gauge", max_increase=0)
    app.metrics.pending.set(50)
    with pytest.raises(CheckPassed):
        rates.verify(check, local)
    clock.advance(60)
    app.metrics.pending.set(20)  # draining
    rates.verify(check, local)
    clock.advance(60)
    app.metrics.pending.set(80)
    with pytest.raises(CheckFailed, match=r"^loyalty_outbox_pending grew by 30 > 0 over 2m"):
        rates.verify(check, local)


def test_a_metric_the_app_does_not_serve(loyalty: tuple[LoyaltyApp, str], local: Target) -> None:
    _, base = loyalty
    with pytest.raises(CheckFailed) as failed:
        rates.verify(rates_check(base, metric="http_requests_totl", max_per_minute=5), local)
    assert failed.value.found == f"no metric http_requests_totl at GET {base}/metrics"
    with pytest.raises(CheckFailed, match=r"status 401 != 200"):
        rates.verify(rates_check(base, **FIVE_XX, scrape={"url": f"{base}/metrics"}), local)


def test_a_labelled_counter_before_its_first_event_is_no_growth_with_missing_zero(
    loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target
) -> None:
    """prometheus_client and prom-client print only HELP/TYPE for a labelled counter nobody has
    counted yet: missing: fail calls that a typo, missing: zero no growth until the first event."""
    app, base = loyalty
    logins = Counter("portal_auth_login", "logins", ["result"], registry=app.metrics.registry)
    fields = {"metric": "portal_auth_login_total", "max_increase": 0}
    with pytest.raises(CheckFailed) as failed:
        rates.verify(rates_check(base, **fields), local)
    assert failed.value.found == f"no metric portal_auth_login_total at GET {base}/metrics"
    check = rates_check(base, **fields, missing="zero")
    with pytest.raises(CheckPassed, match=r"^baseline recorded: 0 series of portal_auth_login_total"):
        rates.verify(check, local)
    clock.advance(60)
    with pytest.raises(CheckPassed) as passed:
        rates.verify(check, local)
    assert passed.value.note == (
        f"no series portal_auth_login_total at GET {base}/metrics yet (missing: zero: a counter "
        "appears at its first event): no growth over 10m"
    )
    clock.advance(60)
    logins.labels("failed").inc(2)  # born since the last run: counted from 0
    with pytest.raises(CheckFailed) as failed:
        rates.verify(check, local)
    assert failed.value.found == (
        f"portal_auth_login_total grew by 2 > 0 over 2m (samples of this suite, GET {base}/metrics)"
    )
    # the endpoint itself failing is still a failure
    refused = rates_check(base, **fields, missing="zero", scrape={"url": f"{base}/metrics"})
    with pytest.raises(CheckFailed, match=r"status 401 != 200"):
        rates.verify(refused, local)


def fake_prometheus(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[prometheus.Sample]]) -> None:
    """Prometheus' answer to each query; a query not listed is refused, as a server refuses it."""

    def query(server: str, promql: str, **_: Any) -> list[prometheus.Sample]:
        if promql not in answers:
            raise prometheus.QueryFailed(f"Prometheus {server} refused {promql!r}: unexpected")
        return answers[promql]

    monkeypatch.setattr(rates.prometheus, "query", query)


def test_missing_zero_on_prometheus_still_needs_the_job_scraped(
    monkeypatch: pytest.MonkeyPatch, local: Target
) -> None:
    server = "http://prometheus.invalid:9090/"
    fields = {
        "metric": "external_requests_total",
        "labels": {"job": "loyalty-api", "result": "rate_limited"},
        "by": ["provider"],
        "max_increase": 3,
    }
    growth = (
        'sum by (provider) (increase(external_requests_total{job=~"loyalty-api",result=~"rate_limited"}'
        "[600s]))"
    )
    exported = 'count(external_requests_total{job=~"loyalty-api"})'
    up = 'up{job=~"loyalty-api"}'
    fake_prometheus(monkeypatch, {growth: [], exported: [], up: [prometheus.Sample("up", {}, 1)]})
    with pytest.raises(CheckFailed) as failed:
        rates.verify(prometheus_check(server, **fields), local)
    assert failed.value.found == (
        f'Prometheus {server} has no series external_requests_total{{job=~"loyalty-api"}} at all '
        "(a typo, or it does not scrape the app)"
    )
    zero = prometheus_check(server, **fields, missing="zero")
    with pytest.raises(CheckPassed) as passed:
        rates.verify(zero, local)
    assert passed.value.note == (
        f"no series external_requests_total at Prometheus {server} yet (missing: zero: a counter "
        "appears at its first event): no growth over 10m"
    )
    fake_prometheus(monkeypatch, {growth: [], exported: [], up: [prometheus.Sample("up", {}, 0)]})
    with pytest.raises(CheckFailed) as failed:
        rates.verify(zero, local)
    assert failed.value.found == (
        f'Prometheus {server} has no series external_requests_total and up{{job=~"loyalty-api"}} is 0 '
        "(the last scrape failed)"
    )
    fake_prometheus(monkeypatch, {growth: [], exported: [], up: []})
    with pytest.raises(CheckFailed) as failed:
        rates.verify(zero, local)
    assert failed.value.found == (
        f'Prometheus {server} has no series external_requests_total and no target up{{job=~"loyalty-api"}} '
        "(it does not scrape the app)"
    )
    fake_prometheus(monkeypatch, {})
    with pytest.raises(CheckError, match="refused"):
        rates.verify(zero, local)
    # a series there is judged as ever, missing: zero or not
    over = [prometheus.Sample("", {"provider": "telegram"}, 5)]
    fake_prometheus(monkeypatch, {growth: over})
    with pytest.raises(CheckFailed, match=r"grew by provider=telegram: 5 > 3 over 10m"):
        rates.verify(zero, local)


def test_metrics_present_names_a_counter_declared_without_samples(
    loyalty: tuple[LoyaltyApp, str], local: Target
) -> None:
    """`present: [external_requests_total]` on a counter that only has its HELP/TYPE lines."""
    app, base = loyalty
    check = MetricsCheck(
        **COMMON,
        id="metrics-present",
        url=f"{base}/metrics",
        headers={"X-Metrics-Token": METRICS_TOKEN},
        present=["http_requests_total", "portal_auth_refresh_total"],
    )
    with pytest.raises(CheckFailed) as failed:
        metrics.verify(check, local)
    assert re.fullmatch(
        rf"no metric portal_auth_refresh_total among \d+ families \(GET {base}/metrics\)", failed.value.found
    )
    Counter("portal_auth_refresh", "refreshes", ["result"], registry=app.metrics.registry)
    metrics.verify(check, local)
    gauge = MetricsCheck(**{**check.model_dump(), "present": ["loyalty_outbox_pending_total"]})
    with pytest.raises(CheckFailed, match="no metric loyalty_outbox_pending_total"):
        metrics.verify(gauge, local)  # _total names only counters


def test_two_runs_at_once_keep_each_others_samples(tmp_path: Path) -> None:
    store = samples.SampleStore(tmp_path)

    def run(number: int) -> None:
        for moment in range(5):
            store.record(f"source-{number}", samples.Snapshot(float(moment), {"x": float(number)}), 600)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = json.loads((tmp_path / "samples.json").read_text())
    assert sorted(stored["sources"]) == sorted(f"source-{number}" for number in range(16))
    assert all(len(history) == 5 for history in stored["sources"].values())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["samples.json", "samples.json.lock"]


def test_a_rate_description(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"set prometheus .* or scrape"):
        RatesCheck(**COMMON, id="x", metric="m", max_increase=0)
    with pytest.raises(ValidationError, match="set exactly one of: max_per_minute, max_increase"):
        rates_check("http://127.0.0.1:1", metric="m")
    with pytest.raises(ValidationError, match="not a number: 'five'"):
        rates_check("http://127.0.0.1:1", metric="m", max_per_minute="five")
    with pytest.raises(ValidationError, match="String should match pattern"):
        rates_check("http://127.0.0.1:1", metric="m", max_per_minute=1, by=["provider) or vector(1"])
    assert rates_check("http://127.0.0.1:1", metric="m", max_per_minute="2.5").max_per_minute == 2.5


# -- rates: a real Prometheus server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus_url(loyalty_server: tuple[LoyaltyApp, str]) -> Iterator[str]:
    _, base = loyalty_server
    yield from start_prometheus(base.removeprefix("http://"), METRICS_TOKEN)


def scraped(prometheus_url: str, query: str, at_least: float) -> None:
    """Wait until Prometheus answers `query` with a value of at least `at_least`."""

    def seen() -> bool:
        found = prometheus.query(prometheus_url, query, timeout=5)
        return bool(found) and found[0].value >= at_least

    wait_for(seen, f"prometheus: {query} >= {at_least}", seconds=30)


def prometheus_check(server: str, **fields: Any) -> RatesCheck:
    return RatesCheck(**{**COMMON, "id": "via-prometheus", "prometheus": {"url": server}, **fields})


def test_promql_for_a_check() -> None:
    check = prometheus_check(
        "http://127.0.0.1:9",
        metric="external_requests_total",
        labels={"result": 'http_error|"error"'},
        by=["provider"],
        max_increase=0,
    )
    assert rates.promql(check) == (
        'sum by (provider) (increase(external_requests_total{result=~"http_error|\\"error\\""}[600s]))'
    )
    gauge = prometheus_check(
        "http://127.0.0.1:9", metric="loyalty_outbox_pending", type="gauge", max_increase=0
    )
    assert rates.promql(gauge) == "sum (delta(loyalty_outbox_pending[600s]))"


@pytest.mark.slow
def test_rates_from_a_real_prometheus(
    loyalty: tuple[LoyaltyApp, str], prometheus_url: str, local: Target
) -> None:
    app, _ = loyalty
    server_errors = app.metrics.requests.labels("GET", "500")  # the series exists, at 0
    telegram_errors = app.metrics.external.labels("telegram", "http_error", "502")
    # Prometheus counts from a series' second sample: wait until it has seen both at 0.
    scraped(prometheus_url, 'count_over_time(http_requests_total{status="500"}[1m])', 3)
    scraped(
        prometheus_url, 'count_over_time(external_requests_total{provider="telegram",status="502"}[1m])', 3
    )
    check = prometheus_check(prometheus_url, **FIVE_XX, window="1m")
    rates.verify(check, local)
    by_provider = prometheus_check(
        prometheus_url,
        metric="external_requests_total",
        labels={"result": "http_error|error"},
        by=["provider"],
        max_increase=0,
        window="1m",
    )
    rates.verify(by_provider, local)
    server_errors.inc(60)
    telegram_errors.inc(4)
    scraped(prometheus_url, 'sum(increase(http_requests_total{status="500"}[1m]))', 30)
    scraped(prometheus_url, 'sum(increase(external_requests_total{provider="telegram"}[1m]))', 2)
    with pytest.raises(CheckFailed) as failed:
        rates.verify(check, local)
    assert re.fullmatch(
        rf'http_requests_total\{{status=~"5\.\."\}} rose \d+(\.\d+)?/min > 5/min over 1m '
        rf"\(Prometheus {prometheus_url}\)",
        failed.value.found,
    ), failed.value.found
    with pytest.raises(CheckFailed) as failed:
        rates.verify(by_provider, local)
    assert re.fullmatch(
        r'external_requests_total\{result=~"http_error\|error"\} by provider grew by '
        rf"provider=telegram: \d+(\.\d+)? > 0 over 1m \(Prometheus {prometheus_url}\)",
        failed.value.found,
    ), failed.value.found


def test_prometheus_without_the_metric_or_unreachable(
    prometheus_url: str, no_proxy: None, local: Target
) -> None:
    with pytest.raises(CheckFailed) as failed:
        rates.verify(prometheus_check(prometheus_url, metric="http_requests_totl", max_per_minute=5), local)
    assert failed.value.found == (
        f"Prometheus {prometheus_url} has no series http_requests_totl at all "
        "(a typo, or it does not scrape the app)"
    )
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CheckError, match=rf"Prometheus {closed}: ConnectError"):
        rates.verify(prometheus_check(closed, **FIVE_XX), local)


# -- scenario: smoke-integrations.sh -----------------------------------------------------------------


def smoke_steps(outlet: str = "outlet-7") -> list[dict[str, Any]]:
    return [
        {
            "name": "code",
            "method": "POST",
            "url": "/api/integrations/code",
            "json": {"user_token": USER_TOKEN},
            "json_conditions": [{"path": "customer.id", "exists": True}],
            "capture": {"customer_id": "customer.id"},
            "max_ms": 2000,
        },
        {
            "name": "balance",
            "url": "/api/integrations/customers/{{customer_id}}/balance",
            "json_conditions": [{"path": "balance", "min": 0}],
            "max_ms": "800",
        },
        {
            "name": "purchase",
            "method": "POST",
            "url": "/api/integrations/purchases",
            "json": {
                "customer_id": "{{customer_id}}",
                "outlet_id": outlet,
                "note": "smoke for {{customer_id}}",
            },
            "expect_status": [201],
            "capture": {"purchase_id": "id"},
            "mutates": True,
        },
    ]


def scenario_check(base: str, **fields: Any) -> ScenarioCheck:
    defaults = {
        "id": "smoke-integrations",
        "base_url": base,
        "headers": {"X-Api-Key": API_KEY},
        "steps": smoke_steps(),
        "allow_mutations_env": "SMOKE_ALLOW_MUTATIONS",
    }
    return ScenarioCheck(**{**COMMON, **defaults, **fields})


def test_the_smoke_scenario_skips_mutations_unless_allowed(
    loyalty: tuple[LoyaltyApp, str], local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, base = loyalty
    monkeypatch.setenv("SMOKE_ALLOW_MUTATIONS", "0")
    with pytest.raises(CheckPassed) as passed:
        scenario.verify(scenario_check(base), local)
    assert passed.value.note == (
        "2 of 3 steps passed; "
        "skipped purchase (mutates: runs only with --allow-writes, allow_writes: true "
        "or SMOKE_ALLOW_MUTATIONS=1)"
    )
    assert app.purchases == []
    monkeypatch.setenv("SMOKE_ALLOW_MUTATIONS", "1")
    scenario.verify(scenario_check(base), local)
    assert app.purchases == [
        {"customer_id": CUSTOMER_ID, "outlet_id": "outlet-7", "note": f"smoke for {CUSTOMER_ID}"}
    ]


def test_allow_writes_runs_the_mutations_too(
    loyalty: tuple[LoyaltyApp, str], local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, base = loyalty
    monkeypatch.delenv("SMOKE_ALLOW_MUTATIONS", raising=False)
    steps = [*smoke_steps(), {"name": "again", "url": "/api/integrations/customers/{{customer_id}}/balance"}]
    check = scenario_check(base, steps=steps)
    check.allow_writes()  # what the collector does for every check under --allow-writes
    scenario.verify(check, local)
    assert len(app.purchases) == 1


def test_a_description_allowing_writes_runs_the_mutations(
    loyalty: tuple[LoyaltyApp, str], local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`allow_writes: true` (a staging description) is the same opt-in as --allow-writes."""
    app, base = loyalty
    monkeypatch.delenv("SMOKE_ALLOW_MUTATIONS", raising=False)
    check = scenario_check(base)
    assert check.mutations_allowed()[0] is False
    check.allow_writes()  # what System does for every check when allow_writes: true
    scenario.verify(check, local)
    assert len(app.purchases) == 1


def test_allow_writes_in_the_description_reaches_its_checks() -> None:
    from runbook.describe.schema import System

    def system(allow: bool) -> System:
        check = {**COMMON, "id": "smoke", "base_url": "http://127.0.0.1:9", "steps": smoke_steps()}
        return System.model_validate(
            {
                "system": "loyalty-api",
                "runbook": "x.md",
                "hosts": {"api": "local://"},
                "allow_writes": allow,
                "checks": {"scenario": [check]},
            }
        )

    assert system(True).checks.scenario[0].writes_allowed is True
    assert system(False).checks.scenario[0].writes_allowed is False


def test_a_step_over_its_time_limit(
    loyalty: tuple[LoyaltyApp, str], local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, base = loyalty
    app.slow_ms = 300
    steps = smoke_steps()[:2]
    steps[1]["max_ms"] = 100
    with pytest.raises(CheckFailed) as failed:
        scenario.verify(scenario_check(base, steps=steps), local)
    where = f"step balance: GET {base}/api/integrations/customers/c%2F42%20x/balance"
    assert re.fullmatch(rf"answered in (\d+)ms > 100ms \({re.escape(where)}\)", failed.value.found), (
        failed.value.found
    )


def test_a_failing_step_says_which_and_shows_the_body(loyalty: tuple[LoyaltyApp, str], local: Target) -> None:
    app, base = loyalty
    app.balance_broken = True
    with pytest.raises(CheckFailed) as failed:
        scenario.verify(scenario_check(base), local)
    where = f"step balance: GET {base}/api/integrations/customers/c%2F42%20x/balance"
    assert re.fullmatch(rf"status 500 != 200 \({re.escape(where)}, \d+ms\)", failed.value.found), (
        failed.value.found
    )
    assert failed.value.evidence["response body of step balance"] == '{"error": "db"}'


def test_a_wrong_key_and_a_missing_capture(loyalty: tuple[LoyaltyApp, str], local: Target) -> None:
    _, base = loyalty
    with pytest.raises(CheckFailed, match=r"^status 401 != 200 \(step code: POST "):
        scenario.verify(scenario_check(base, headers={"X-Api-Key": "wrong"}), local)
    steps = smoke_steps()[:2]
    steps[0]["capture"] = {"customer_id": "customer.uuid"}
    with pytest.raises(CheckFailed) as failed:
        scenario.verify(scenario_check(base, steps=steps), local)
    assert failed.value.found == f"customer.uuid is absent (step code: POST {base}/api/integrations/code)"
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(
        CheckFailed, match=rf"^step code: POST {closed}/api/integrations/code failed: ConnectError"
    ):
        scenario.verify(scenario_check(closed), local)


def test_captured_values_go_into_the_path_headers_and_json_only() -> None:
    base = "http://127.0.0.1:9"
    with pytest.raises(ValidationError, match="go into the path only"):
        scenario_check(base, steps=[{"name": "a", "url": "/x?id={{customer_id}}"}])
    with pytest.raises(ValidationError, match="go into the path only"):
        scenario_check(base, steps=[{"name": "a", "url": "http://{{host}}/x"}])
    with pytest.raises(ValidationError, match="step b: customer_id not captured by an earlier step"):
        scenario_check(base, steps=[{"name": "a", "url": "/a"}, {"name": "b", "url": "/c/{{customer_id}}"}])
    with pytest.raises(ValidationError, match="is a path: set base_url"):
        scenario_check(base, base_url=None, steps=[{"name": "a", "url": "/a"}])


def test_a_captured_line_break_cannot_become_a_header(
    local: Target, no_proxy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = scenario_check(
        "http://127.0.0.1:9",
        steps=[
            {"name": "a", "url": "/a", "capture": {"x": "x"}},
            {"name": "b", "url": "/b", "headers": {"X-Trace": "{{x}}"}},
        ],
    )
    monkeypatch.setattr(scenario, "_run", _fake_first_step(scenario._run))
    with pytest.raises(CheckFailed) as failed:
        scenario.verify(check, local)
    assert failed.value.found == (
        "header X-Trace: a value has no line break or NUL (step b: GET http://127.0.0.1:9/b)"
    )


def _fake_first_step(real: Any) -> Any:
    def run(check: ScenarioCheck, step: Any, target: Target, captured: dict[str, Any]) -> dict[str, Any]:
        if step.name == "a":
            return {"x": "v\r\nInjected: 1"}
        return real(check, step, target, captured)  # type: ignore[no-any-return]

    return run


# -- a whole run, as an operator starts it -------------------------------------------------------------

WHOLE_RUN = """\
system: loyalty-api
runbook: loyalty-api.md
hosts: {{server: "local://"}}
x-remedy: &remedy проверьте БД, Redis и внешний интеграционный эндпоинт
checks:
  rates:
    - {{id: http-5xx-rate, title: 5xx per minute under ALERT_HTTP_5XX_PER_MIN, metric: http_requests_total,
       labels: {{status: "5.."}}, window: 10m, max_per_minute: "${{ALERT_HTTP_5XX_PER_MIN}}",
       scrape: {{url: "{base}/metrics", headers: {{X-Metrics-Token: "${{LOYALTY_METRICS_TOKEN}}"}}}},
       severity: P2, section: Наблюдаемость и алерты, remedy: *remedy}}
  scenario:
    - id: smoke-integrations
      title: the integration API's minimal scenario
      base_url: "{base}"
      headers: {{X-Api-Key: "${{INTEGRATION_API_KEY}}"}}
      allow_mutations_env: SMOKE_ALLOW_MUTATIONS
      steps: {steps}
      severity: P2
      section: Интеграционный smoke
      remedy: *remedy
"""


@pytest.mark.slow
def test_a_whole_run_records_a_baseline_then_judges_the_rate(
    loyalty: tuple[LoyaltyApp, str], tmp_path: Path
) -> None:
    app, base = loyalty
    steps = json.dumps(smoke_steps()).replace(USER_TOKEN, "${SMOKE_USER_TOKEN}")
    description = tmp_path / "loyalty-api.yml"
    description.write_text(WHOLE_RUN.format(base=base, steps=steps), encoding="utf-8")
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")},
        "ALERT_HTTP_5XX_PER_MIN": "5",
        "LOYALTY_METRICS_TOKEN": METRICS_TOKEN,
        "INTEGRATION_API_KEY": API_KEY,
        "SMOKE_USER_TOKEN": USER_TOKEN,
        "SMOKE_ALLOW_MUTATIONS": "0",
    }
    reports = tmp_path / "reports"

    def run(*args: str, unset: str = "", code: tuple[int, ...] = (0, 1)) -> dict[str, dict[str, Any]]:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
        command += [f"--reports-dir={reports}", *args]
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={key: value for key, value in environment.items() if key != unset},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode in code, done.stdout[-3000:] + done.stderr[-3000:]
        if unset:
            assert f"{unset} (needed by loyalty-api:http-5xx-rate)" in done.stderr
            return {}
        summary = json.loads((reports / "latest" / "summary.json").read_text(encoding="utf-8"))
        return {record["check_id"]: record for record in summary["checks"]}

    first = run()
    assert first["http-5xx-rate"]["outcome"] == "passed"
    assert first["http-5xx-rate"]["message"].startswith("baseline recorded: 0 series of http_requests_total")
    assert first["smoke-integrations"]["outcome"] == "passed"
    assert first["smoke-integrations"]["message"] == (
        "2 of 3 steps passed; "
        "skipped purchase (mutates: runs only with --allow-writes, allow_writes: true "
        "or SMOKE_ALLOW_MUTATIONS=1)"
    )
    assert (reports / ".state" / "samples.json").exists()
    app.metrics.requests.labels("GET", "503").inc(1000)
    second = run("--allow-writes")
    assert second["http-5xx-rate"]["outcome"] == "failed"
    assert re.search(
        r'http_requests_total\{status=~"5\.\."\} rose \d+/min > 5/min', second["http-5xx-rate"]["message"]
    )
    assert second["smoke-integrations"]["message"] == "ok"
    assert len(app.purchases) == 1
    # A missing secret is the run's configuration error: exit 4 naming it, before any check runs.
    run("-k", "5xx", unset="ALERT_HTTP_5XX_PER_MIN", code=(4,))
    written = [path.read_text(errors="replace") for path in reports.glob("**/*") if path.is_file()]
    assert not [text for text in written if API_KEY in text or USER_TOKEN in text or METRICS_TOKEN in text]


def test_a_nan_sample_fails_and_is_never_stored(
    loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target
) -> None:
    """100 -> NaN -> 1000: NaN > limit is False, so a NaN would pass any limit and poison the store."""
    app, base = loyalty
    series = app.metrics.requests.labels("GET", "500")
    check = rates_check(base, **FIVE_XX)
    series.inc(100)
    with pytest.raises(CheckPassed):
        rates.verify(check, local)
    clock.advance(60)
    series._value.set(float("nan"))  # what a broken exporter serves
    with pytest.raises(CheckFailed, match=r"not a number: http_requests_total\{.*\} = nan"):
        rates.verify(check, local)
    stored = (samples.STORE.folder / "samples.json").read_text()  # type: ignore[operator]
    assert "NaN" not in stored and "nan" not in stored.lower().replace("snapshots", "")
    clock.advance(60)
    series._value.set(1000)
    with pytest.raises(CheckFailed, match=r"rose .*/min > 5/min"):
        rates.verify(check, local)


@pytest.mark.slow
def test_the_suites_own_slow_requests_are_left_out_of_the_slow_rate(
    loyalty: tuple[LoyaltyApp, str], clock: Clock, local: Target
) -> None:
    """The api counts every request over its threshold, the suite's too: on a busy runner they
    would stay in the window as the service's slow requests. Those the suite sent slower than the
    threshold are left out; the service's own stay, and the message says how many were left out."""
    from runbook.host import http_client

    app, base = loyalty
    check = rates_check(
        base,
        metric="http_slow_requests_total",
        max_per_minute=1,
        own_requests={"url": f"{base}/", "slower_than_ms": 800},  # the scrapes stay under it, busy or not
    )
    with pytest.raises(CheckPassed):
        rates.verify(check, local)  # the baseline
    app.slow_ms = 1000
    for _ in range(3):
        answer = http_client.fetch(
            "GET", f"{base}/api/integrations/x", headers={"X-API-Key": API_KEY}, timeout=5
        )
        assert answer.seconds > 0.8
        app.metrics.slow.inc()  # as the api counts a request over its threshold
    clock.advance(60)
    rates.verify(check, local)  # 3/min, all three the suite's own
    app.metrics.slow.inc(3)  # three of the service's own
    clock.advance(60)
    with pytest.raises(CheckFailed) as failed:
        rates.verify(check, local)
    assert failed.value.found == (
        f"http_slow_requests_total rose 1.5/min > 1/min over 2m (samples of this suite, GET {base}/metrics; "
        "left out: 3 of this suite's own requests over 800 ms)"
    )


def test_a_malformed_own_requests_store_is_read_as_empty(tmp_path: Path) -> None:
    store = samples.SampleStore(tmp_path)
    for stored in ("x", {"http://a:80": "x"}, {"http://a:80": [[1, "a"], [float("nan"), 1], [1, 2, 3]]}):
        (tmp_path / samples.FILE_NAME).write_text(
            json.dumps({"version": samples.VERSION, "sources": {}, "own_requests": stored}), encoding="utf-8"
        )
        assert store.own_requests("http://a:80") == []
    store.record_own_requests({"http://a:80": [samples.OwnRequest(5.0, 1.5)]})
    assert store.own_requests("http://a:80") == [samples.OwnRequest(5.0, 1.5)]


def test_a_script_that_asks_the_service_counts_as_many_slow_requests_as_fit_in_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local: Target
) -> None:
    """A smoke script's curls reach the api one at a time: a `commands` check with `requests_to`
    notes its whole time, and the slow rate leaves out at most as many requests as the threshold
    fits in it (4.1 s of script at 1000 ms: 4), beside the runner's own requests over it."""
    from runbook.checks import commands
    from runbook.host import own_traffic

    store = samples.SampleStore(tmp_path)
    monkeypatch.setattr(own_traffic, "STORE", store)
    own_traffic.LEDGER.note("http://api.example.com:3000/", 4.1, sequential=True)
    own_traffic.LEDGER.note("http://api.example.com:3000/health", 1.5)
    own_traffic.LEDGER.note("http://api.example.com:3000/health", 0.2)
    assert own_traffic.slower_than("http://api.example.com:3000", 1.0, since=0) == 4 + 1
    assert own_traffic.slower_than("http://api.example.com:3000", 2.0, since=0) == 2
    assert store.own_requests("http://api.example.com:3000")[0].sequential  # kept as such

    check = commands.CommandCheck(
        **COMMON, id="smoke-check", run="sleep 0.3", requests_to="http://api.example.com:3000"
    )
    commands.verify(check, local)  # 0.3 s and a little more: one request over 250 ms at most
    assert own_traffic.slower_than("http://api.example.com:3000", 0.25, since=0) == 16 + 1 + 1
