"""The data kinds of Map v12 against a real PostgreSQL 15 and a real Redis on loopback.

postgres (SELECT 1 and connect time, Alembic head from three sources, tables,
row counts), redis (PING, Pub/Sub subscribers, from the runner and inside a
container), backups of pg_dump custom archives (pg_restore reads them, an
off-host copy matches), and the restore test. Each proved both ways. Tunnels
through a real sshd are in test_tunnels.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks import backups, postgres, redis, restore
from runbook.checks.backups import BackupCheck
from runbook.checks.postgres import PostgresCheck
from runbook.checks.redis import RedisCheck
from runbook.checks.restore import RestoreCheck
from runbook.errors import CheckError, CheckFailed
from runbook.host import pg
from runbook.host.routes import Reachable
from runbook.host.target import Target
from selftests.data_servers import (
    FakeDocker,
    Postgres,
    Redis,
    free_port,
    install_fake_docker,
    pg_dump,
)

ROOT = Path(__file__).resolve().parents[1]
COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "1.", "remedy": "fix it"}
HEAD = "3f2a1b9c0d4e"


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    return install_fake_docker(tmp_path / "docker-bin", monkeypatch)


def pg_check(postgres_server: Postgres, **fields: Any) -> PostgresCheck:
    return PostgresCheck(**COMMON, id="db", dsn=fields.pop("dsn", postgres_server.dsn()), **fields)


# -- postgres: SELECT 1 ----------------------------------------------------------------------


@pytest.mark.slow
def test_select_one_answers(postgres_server: Postgres, local: Target) -> None:
    postgres.verify(pg_check(postgres_server, select_one=True, max_connect_ms=5000), local)


@pytest.mark.slow
def test_select_one_fails_on_a_wrong_password_without_saying_it(
    postgres_server: Postgres, local: Target
) -> None:
    check = pg_check(postgres_server, dsn=postgres_server.dsn(password="not-the-password"), select_one=True)
    with pytest.raises(CheckFailed, match="password authentication failed") as failed:
        postgres.verify(check, local)
    assert "not-the-password" not in str(failed.value)
    assert failed.value.expected == f"PostgreSQL map@127.0.0.1:{postgres_server.port}/map answers SELECT 1"


@pytest.mark.slow
def test_select_one_fails_when_nothing_listens(postgres_server: Postgres, local: Target) -> None:
    started = time.monotonic()
    with pytest.raises(CheckFailed, match=r"cannot connect to PostgreSQL .*Connection refused"):
        postgres.verify(
            pg_check(postgres_server, dsn=postgres_server.dsn(port=free_port()), select_one=True, timeout=3),
            local,
        )
    assert time.monotonic() - started < 20  # bounded by the check's timeout, not the OS's


@pytest.mark.slow
def test_select_one_fails_on_a_slow_connect(postgres_server: Postgres, local: Target) -> None:
    with pytest.raises(CheckFailed, match=r"connecting took \d+ms > 0.001ms"):
        postgres.verify(pg_check(postgres_server, select_one=True, max_connect_ms=0.001), local)


@pytest.mark.slow
def test_sessions_are_read_only_and_bounded(postgres_server: Postgres, local: Target) -> None:
    check = pg_check(postgres_server, select_one=True)

    def settings(session: pg.Session) -> tuple[str, str]:
        return session.value("SHOW transaction_read_only"), session.value("SHOW statement_timeout")

    assert pg.with_session(check, local, check.dsn, settings, timeout=3) == ("on", "3s")
    with pytest.raises(pg.DatabaseError, match="read-only transaction"):
        pg.with_session(check, local, check.dsn, lambda s: s.rows("DELETE FROM users"), timeout=3)
    started = time.monotonic()
    with pytest.raises(pg.DatabaseError, match="statement timeout"):
        pg.with_session(check, local, check.dsn, lambda s: s.rows("SELECT pg_sleep(30)"), timeout=1)
    assert time.monotonic() - started < 20  # pg_sleep(30) was cut by statement_timeout
    with postgres_server.superuser() as admin:
        assert admin.execute("SELECT count(*) FROM users").fetchone() == (1000,)


@pytest.mark.parametrize(
    ("dsn", "said"),
    [
        ("postgresql://map@:5432/map", "needs one TCP host"),
        ("postgresql://map@db:port/map", "not a number"),
        ("nonsense", "not a PostgreSQL DSN"),
        ("postgresql://map@-oProxyCommand=x:5432/map", "not a host name"),
    ],
)
def test_an_unusable_dsn_is_that_checks_error(dsn: str, said: str, local: Target) -> None:
    check = PostgresCheck(**COMMON, id="db", dsn=dsn, select_one=True, via="tunnel")
    with pytest.raises(CheckError, match=said):
        postgres.verify(check, local)


# -- postgres: Alembic head ------------------------------------------------------------------


def migration(folder: Path, revision: str, parent: str | None) -> None:
    down = f'"{parent}"' if parent else "None"
    (folder / f"{revision}_step.py").write_text(
        f'"""step\n\nRevision ID: {revision}\nRevises: {parent}\n"""\n'
        f'revision: str = "{revision}"\ndown_revision: Union[str, None] = {down}\n'
        "def upgrade() -> None:\n    pass\n"
    )


@pytest.mark.slow
def test_alembic_head_from_the_description(postgres_server: Postgres, local: Target) -> None:
    postgres.verify(pg_check(postgres_server, alembic_head={"revision": HEAD}), local)
    with pytest.raises(CheckFailed, match=f"alembic_version is {HEAD} != head 9a8b7c6d5e4f"):
        postgres.verify(pg_check(postgres_server, alembic_head={"revision": "9a8b7c6d5e4f"}), local)


@pytest.mark.slow
def test_alembic_head_from_the_versions_folder(
    postgres_server: Postgres, local: Target, tmp_path: Path
) -> None:
    migration(tmp_path, "1a2b3c4d5e6f", None)
    migration(tmp_path, HEAD, "1a2b3c4d5e6f")
    postgres.verify(pg_check(postgres_server, alembic_head={"versions_dir": str(tmp_path)}), local)
    migration(tmp_path, "ffee00112233", HEAD)  # a new migration, not applied yet
    with pytest.raises(CheckFailed, match=f"alembic_version is {HEAD} != head ffee00112233") as failed:
        postgres.verify(pg_check(postgres_server, alembic_head={"versions_dir": str(tmp_path)}), local)
    assert f"(from the migrations in {tmp_path})" in failed.value.expected


@pytest.mark.slow
def test_alembic_heads_in_the_web_service(
    postgres_server: Postgres, local: Target, docker: FakeDocker
) -> None:
    docker.add("map-v12-web-1", service="web")
    docker.add("map-v12-web-2", service="web")
    docker.program("alembic", f"#!/bin/sh\necho '{HEAD} (head)'\n")
    head = {"service": "web", "project": "map-v12"}
    postgres.verify(pg_check(postgres_server, alembic_head=head), local)
    with pytest.raises(CheckFailed, match=r"no container of compose service web \(project other\)"):
        postgres.verify(pg_check(postgres_server, alembic_head={**head, "project": "other"}), local)


@pytest.mark.slow
def test_alembic_heads_in_the_web_container(
    postgres_server: Postgres, local: Target, docker: FakeDocker
) -> None:
    docker.add("web")
    docker.program("alembic", f"#!/bin/sh\necho 'INFO  [alembic] context' >&2\necho '{HEAD} (head)'\n")
    postgres.verify(pg_check(postgres_server, alembic_head={"container": "web"}), local)
    docker.program("alembic", "#!/bin/sh\necho 'FAILED: No config file alembic.ini found' >&2\nexit 1\n")
    with pytest.raises(CheckError, match="No config file"):
        postgres.verify(pg_check(postgres_server, alembic_head={"container": "web"}), local)


@pytest.mark.slow
def test_migrations_that_never_ran(postgres_server: Postgres, local: Target) -> None:
    check = pg_check(
        postgres_server, alembic_head={"revision": HEAD}, version_table="public.alembic_versions"
    )
    with pytest.raises(CheckFailed, match=r"no table public\.alembic_versions: migrations never ran"):
        postgres.verify(check, local)


def test_an_alembic_head_has_one_source() -> None:
    with pytest.raises(
        ValidationError, match=r"exactly one of: revision, container \(or service\), versions_dir"
    ):
        PostgresCheck(**COMMON, id="db", dsn="x", alembic_head={"revision": HEAD, "container": "web"})


# -- postgres: tables and rows ----------------------------------------------------------------


@pytest.mark.slow
def test_tables_exist(postgres_server: Postgres, local: Target) -> None:
    postgres.verify(pg_check(postgres_server, tables=["admin_audit_log", "public.users"]), local)
    with pytest.raises(CheckFailed, match="missing: audit_log; recent_markers is a view"):
        postgres.verify(
            pg_check(postgres_server, tables=["admin_audit_log", "audit_log", "recent_markers"]), local
        )


@pytest.mark.slow
def test_min_rows(postgres_server: Postgres, local: Target) -> None:
    postgres.verify(pg_check(postgres_server, min_rows={"users": 1000, "admin_audit_log": 1}), local)
    with pytest.raises(CheckFailed, match="markers has 50 rows < 51"):
        postgres.verify(pg_check(postgres_server, min_rows={"users": 1, "markers": 51}), local)


@pytest.mark.parametrize("table", ["users; DROP TABLE users", "-users", "a.b.c", "users\n"])
def test_a_table_is_a_name(table: str) -> None:
    with pytest.raises(ValidationError):
        PostgresCheck(**COMMON, id="db", dsn="x", tables=[table])


# -- redis ------------------------------------------------------------------------------------


def redis_check(**fields: Any) -> RedisCheck:
    return RedisCheck(**COMMON, id="redis", **fields)


def test_redis_ping_from_the_runner(redis_server: Redis, local: Target) -> None:
    redis.verify(redis_check(url=redis_server.url(), ping=True), local)
    with pytest.raises(CheckFailed, match=r"PING answered .*(NOAUTH|WRONGPASS)") as failed:
        redis.verify(redis_check(url=redis_server.url(password="wrong-secret"), ping=True), local)
    assert "wrong-secret" not in str(failed.value)
    with pytest.raises(CheckFailed, match=r"cannot reach Redis: .*Connection refused"):
        redis.verify(redis_check(url=redis_server.url(port=free_port()), ping=True), local)


def test_the_worker_listens_on_its_channel(redis_server: Redis, local: Target) -> None:
    check = redis_check(url=redis_server.url(), channel="map:events", min_subscribers=1)
    with pytest.raises(CheckFailed, match=r"channel 'map:events' has 0 subscriber\(s\) < 1"):
        redis.verify(check, local)
    with redis_server.subscribe("map:events"):
        redis.verify(check, local)
        with pytest.raises(CheckFailed, match=r"has 1 subscriber\(s\) < 2"):
            redis.verify(redis_check(url=redis_server.url(), channel="map:events", min_subscribers=2), local)


def test_redis_cli_inside_the_container(
    redis_server: Redis, local: Target, docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker.add("redis")
    monkeypatch.setenv("REDISCLI_AUTH", redis_server.password)  # the container's own environment
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    redis.verify(redis_check(url=url, via="exec", container="redis", ping=True), local)
    with redis_server.subscribe("map:events"):
        check = redis_check(url=url, via="exec", container="redis", channel="map:events", min_subscribers=1)
        redis.verify(check, local)
    docker.add("redis", status="exited")
    with pytest.raises(CheckFailed, match="redis is exited"):
        redis.verify(redis_check(url=url, via="exec", container="redis", ping=True), fresh(local))


def test_redis_cli_in_the_redis_service(
    redis_server: Redis, local: Target, docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker.add("map-v12-redis-1", service="redis")
    monkeypatch.setenv("REDISCLI_AUTH", redis_server.password)
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    redis.verify(redis_check(url=url, via="exec", service="redis", project="map-v12", ping=True), local)


def test_a_channel_name_stays_an_argument(redis_server: Redis, local: Target) -> None:
    check = redis_check(url=redis_server.url(), channel="-x --eval /etc/passwd", min_subscribers=1)
    with pytest.raises(CheckFailed, match="has 0 subscriber"):
        redis.verify(check, local)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"via": "exec", "container": "redis", "url": "redis://:secret@127.0.0.1:6379/0"}, "REDISCLI_AUTH"),
        ({"via": "exec"}, "inside a container: set container: or service:"),
        ({"container": "redis"}, "set via: tunnel"),
        ({"service": "redis"}, "set via: tunnel"),
        ({"channel": "map:events"}, "go together"),
    ],
)
def test_redis_descriptions_that_make_no_sense(fields: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        redis_check(ping=True, **fields)


# -- backups of pg_dump archives ----------------------------------------------------------------


def fresh(target: Target) -> Target:
    """The same host without the run's cached facts (a backup listing, docker inspect)."""
    return Target(target.name, target.spec, command_timeout=30, connect_timeout=5)


@pytest.fixture(scope="module")
def good_dump(postgres_server: Postgres, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return pg_dump(postgres_server, tmp_path_factory.mktemp("dump") / "pgdump.dump").read_bytes()


def put_dump(folder: Path, data: bytes, name: str = "pgdump_20261123_030000.dump") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def dump_check(folder: Path, **fields: Any) -> BackupCheck:
    return BackupCheck(**COMMON, id="pgdump", directory=str(folder), pattern="pgdump_*.dump", **fields)


def test_a_pg_dump_is_fresh_and_non_trivial(good_dump: bytes, tmp_path: Path, local: Target) -> None:
    put_dump(tmp_path, good_dump)
    backups.verify(dump_check(tmp_path, max_age_hours=25), local)
    backups.verify(dump_check(tmp_path, min_bytes=10_000), local)
    with pytest.raises(CheckFailed, match=r"newest backup \d+ bytes < 100000000"):
        backups.verify(dump_check(tmp_path, min_bytes=100_000_000), local)


@pytest.mark.parametrize("pg_restore_on", ["runner", "host"])
def test_pg_restore_reads_the_newest_dump(
    good_dump: bytes, tmp_path: Path, local: Target, pg_restore_on: str
) -> None:
    put_dump(tmp_path, good_dump)
    backups.verify(
        dump_check(tmp_path, integrity=True, format="pg_custom", pg_restore_on=pg_restore_on), local
    )


@pytest.mark.parametrize("pg_restore_on", ["runner", "host"])
def test_a_truncated_dump_is_corrupt_though_it_lists(
    good_dump: bytes, tmp_path: Path, local: Target, pg_restore_on: str
) -> None:
    """pg_restore --list reads only the TOC: reading every data block is what finds the cut."""
    put_dump(tmp_path, good_dump[: len(good_dump) - 2000])
    check = dump_check(tmp_path, integrity=True, format="pg_custom", pg_restore_on=pg_restore_on)
    with pytest.raises(
        CheckFailed, match=r"pgdump_20261123_030000\.dump is corrupt: .*(end of file|could not)"
    ):
        backups.verify(check, local)


def test_a_dump_that_is_no_archive_is_corrupt(tmp_path: Path, local: Target) -> None:
    put_dump(tmp_path, b"\x1f\x8b" + os.urandom(4000))
    with pytest.raises(CheckFailed, match="does not appear to be a valid archive"):
        backups.verify(dump_check(tmp_path, integrity=True, format="pg_custom"), local)


def pair(tmp_path: Path) -> tuple[Target, Path, Path]:
    """A server and a backup-host (both this machine, different folders) that know each other."""
    here, there = tmp_path / "server", tmp_path / "offsite"
    targets: dict[str, Target] = {}

    def peer(name: str) -> Target:
        if name not in targets:  # as the collector says it
            raise CheckError(f"system has no host {name!r} (hosts: {', '.join(targets)})")
        return targets[name]

    for name in ("server", "backup-host"):
        targets[name] = Target(name, "local://", command_timeout=30, connect_timeout=5, peers=peer)
    return targets["server"], here, there


def test_the_newest_dump_is_also_off_the_host(good_dump: bytes, tmp_path: Path) -> None:
    on_server, here, there = pair(tmp_path)
    put_dump(here, good_dump)
    check = dump_check(here, copy_on="backup-host", copy_directory=str(there))
    with pytest.raises(CheckFailed, match=r"pgdump_20261123_030000\.dump is not on backup-host"):
        backups.verify(check, on_server)
    put_dump(there, good_dump[:-1])
    with pytest.raises(CheckFailed, match=rf"is {len(good_dump) - 1} bytes != {len(good_dump)} on server"):
        backups.verify(check, on_server)
    put_dump(there, good_dump[:-1] + bytes([good_dump[-1] ^ 1]))
    with pytest.raises(
        CheckFailed, match=r"sha256 of .* on backup-host \w{12}\.\.\. != \w{12}\.\.\. on server"
    ):
        backups.verify(check, on_server)
    put_dump(there, good_dump)
    backups.verify(check, on_server)


def test_an_unknown_copy_host_fails_that_check(good_dump: bytes, tmp_path: Path) -> None:
    on_server, here, _ = pair(tmp_path)
    put_dump(here, good_dump)
    with pytest.raises(CheckError, match="no host 'nas'"):
        backups.verify(dump_check(here, copy_on="nas"), on_server)


# -- the restore test ----------------------------------------------------------------------------


def restore_check(postgres_server: Postgres, folder: Path, **fields: Any) -> RestoreCheck:
    fields.setdefault("tables", ["users", "markers"])
    return RestoreCheck(**COMMON, id="restore", directory=str(folder), dsn=postgres_server.dsn(), **fields)


def scratch_databases(postgres_server: Postgres) -> list[str]:
    return [name for name in postgres_server.databases() if name.startswith(restore.SCRATCH_PREFIX)]


def test_restore_test_writes_and_is_gated() -> None:
    assert "scratch database" in RestoreCheck.writes
    assert RestoreCheck.default_markers == ("incident",)


@pytest.mark.slow
def test_the_newest_dump_restores_with_matching_counts(
    postgres_server: Postgres,
    good_dump: bytes,
    tmp_path: Path,
    local: Target,
    caplog: pytest.LogCaptureFixture,
) -> None:
    put_dump(tmp_path, good_dump)
    with caplog.at_level("INFO", logger="runbook.checks.restore"):
        restore.verify(restore_check(postgres_server, tmp_path), local)
    assert scratch_databases(postgres_server) == []
    assert "users" in caplog.text and "1000" in caplog.text


@pytest.mark.slow
def test_counts_out_of_tolerance_are_reported_side_by_side(
    postgres_server: Postgres, good_dump: bytes, tmp_path: Path, local: Target
) -> None:
    put_dump(tmp_path, good_dump)
    with postgres_server.owner() as owner:
        owner.execute("CREATE TABLE extra AS SELECT 1 AS id")
        owner.execute("INSERT INTO markers (user_id) SELECT g FROM generate_series(1, 10) g")
    try:
        check = restore_check(
            postgres_server, tmp_path, tables=["users", "markers", "extra"], tolerance_percent=5
        )
        with pytest.raises(
            CheckFailed, match="markers: 50 restored vs 60 live; extra: missing in the dump"
        ) as failed:
            restore.verify(check, fresh(local))
    finally:
        with postgres_server.owner() as owner:
            owner.execute("DROP TABLE extra")
            owner.execute("DELETE FROM markers WHERE id > 50")
    counts = failed.value.evidence["row counts"].splitlines()
    assert counts[0].split() == ["table", "live", "restored"]
    assert counts[1].split() == ["users", "1000", "1000"]
    assert counts[2].split() == ["markers", "60", "50"]
    assert counts[3].split() == ["extra", "1", "missing"]
    assert scratch_databases(postgres_server) == []


@pytest.mark.slow
def test_a_dump_that_does_not_restore_fails_and_leaves_nothing(
    postgres_server: Postgres, good_dump: bytes, tmp_path: Path, local: Target
) -> None:
    put_dump(tmp_path, good_dump[: len(good_dump) - 2000])
    with pytest.raises(CheckFailed, match=r"pg_restore into runbook_scratch_[0-9a-f]{12} failed: .*"):
        restore.verify(restore_check(postgres_server, tmp_path), local)
    assert scratch_databases(postgres_server) == []


@pytest.mark.slow
def test_a_user_who_cannot_create_databases_is_told(
    postgres_server: Postgres, good_dump: bytes, tmp_path: Path, local: Target
) -> None:
    put_dump(tmp_path, good_dump)
    with postgres_server.superuser() as admin:
        admin.execute("ALTER ROLE map NOCREATEDB")
    try:
        with pytest.raises(CheckError, match="permission denied to create database"):
            restore.verify(restore_check(postgres_server, tmp_path), local)
    finally:
        with postgres_server.superuser() as admin:
            admin.execute("ALTER ROLE map CREATEDB")


# -- reaching a service ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_container_is_reached_through_the_host(
    postgres_server: Postgres, local: Target, docker: FakeDocker
) -> None:
    """On local:// the host is this machine: the tunnel ends at the container's address as is."""
    docker.add("db", address="127.0.0.1")
    check = pg_check(
        postgres_server, dsn=postgres_server.dsn(host="db"), via="tunnel", container="db", select_one=True
    )
    postgres.verify(check, local)
    docker.add("db", status="exited")
    with pytest.raises(CheckFailed, match="db is exited"):
        postgres.verify(check, fresh(local))


@pytest.mark.slow
def test_a_compose_service_is_reached_through_the_host(
    postgres_server: Postgres, local: Target, docker: FakeDocker
) -> None:
    docker.add("map-v12-db-1", service="db")
    fields = {"via": "tunnel", "service": "db", "project": "map-v12", "select_one": True}
    postgres.verify(pg_check(postgres_server, dsn=postgres_server.dsn(host="db"), **fields), local)
    closed = postgres_server.dsn(host="db", port=free_port())
    with pytest.raises(
        CheckFailed, match=r"map@db:\d+/map \(compose service db \(project map-v12\), through local's SSH"
    ):
        postgres.verify(pg_check(postgres_server, dsn=closed, **fields), local)


def test_a_container_needs_a_tunnel() -> None:
    with pytest.raises(ValidationError, match="set via: tunnel"):
        Reachable(container="db")


@pytest.mark.slow
def test_docker_hosts_have_no_tunnels(postgres_server: Postgres) -> None:
    target = Target("box", "docker://box", command_timeout=5, connect_timeout=2)
    check = pg_check(postgres_server, via="tunnel", select_one=True)
    with pytest.raises(CheckError, match=r"cannot open a tunnel through box .*not supported over docker://"):
        postgres.verify(check, target)


# -- a whole run, as an operator starts it ---------------------------------------------------------

WHOLE_RUN = """\
system: map-v12
runbook: runbook.md
compose_project: map-v12
hosts:
  server: "local://"
  backup-host: "local://"
checks:
  postgres:
    - {{id: db-select-one, title: PostgreSQL answers SELECT 1, dsn: "{dsn}", via: tunnel, service: db,
       select_one: true, severity: P1, section: Health, remedy: docker compose logs -n 200 db}}
    - {{id: db-migrations, title: migrations at head, dsn: "{dsn}", alembic_head: {{service: web}},
       severity: P2, section: Migrations, remedy: alembic upgrade head}}
  redis:
    - {{id: redis-ping, title: Redis answers PING, url: "{redis_url}", ping: true,
       severity: P1, section: Health, remedy: docker compose logs -n 200 redis}}
  backups:
    - {{id: pgdump-readable, title: the newest dump reads, directory: "{dumps}", pattern: "pgdump_*.dump",
       format: pg_custom, integrity: true, severity: P2, section: Backup, remedy: rerun the backup}}
    - {{id: pgdump-offsite, title: the newest dump is off the host, directory: "{dumps}",
       pattern: "pgdump_*.dump", copy_on: backup-host, copy_directory: "{offsite}",
       severity: P2, section: Backup, remedy: copy the dumps off the host}}
  restore:
    - {{id: restore-test, title: the newest dump restores, directory: "{dumps}", dsn: "{dsn}",
       tables: [users, markers], severity: P2, section: Restore, remedy: see Restore}}
"""


@pytest.mark.slow
def test_a_whole_run_gates_the_restore_and_shows_no_password(
    postgres_server: Postgres, redis_server: Redis, good_dump: bytes, tmp_path: Path, docker: FakeDocker
) -> None:
    """Compose services as Map v12 names them (compose_project fills in the project), secrets by ${}."""
    docker.add("map-v12-db-1", service="db")
    docker.add("map-v12-web-1", service="web")
    docker.program("alembic", f"#!/bin/sh\necho '{HEAD} (head)'\n")
    dumps, offsite = tmp_path / "backups", tmp_path / "offsite"
    put_dump(dumps, good_dump)
    put_dump(offsite, good_dump)
    description = tmp_path / "map-v12.yml"
    description.write_text(
        WHOLE_RUN.format(
            dsn=postgres_server.dsn(password="${MAP_DB_PASSWORD}"),
            redis_url=redis_server.url(password="${MAP_REDIS_PASSWORD}"),
            dumps=dumps,
            offsite=offsite,
        )
    )
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")},
        "MAP_DB_PASSWORD": postgres_server.password,
        "MAP_REDIS_PASSWORD": redis_server.password,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--systems={description}",
            *args,
        ]
        return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)

    gated = run(f"--reports-dir={tmp_path / 'gated'}", "-rs")
    assert gated.returncode == 0, gated.stdout[-3000:] + gated.stderr[-3000:]
    assert "7 passed, 1 skipped" in gated.stdout
    assert "writes to the system (creates, fills and drops a scratch database" in gated.stdout
    allowed = run(f"--reports-dir={tmp_path / 'allowed'}", "--allow-writes", "-k", "restore")
    assert allowed.returncode == 0, allowed.stdout[-3000:] + allowed.stderr[-3000:]
    assert "1 passed" in allowed.stdout
    assert scratch_databases(postgres_server) == []
    written = [gated.stdout, gated.stderr, allowed.stdout, allowed.stderr]
    written += [path.read_text(errors="replace") for path in tmp_path.glob("*/**/*") if path.is_file()]
    for secret in (postgres_server.password, redis_server.password):
        assert not [text for text in written if secret in text]
