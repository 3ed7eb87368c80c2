"""Restore test (runbook "Backup/Restore (Postgres)"): the newest dump restores and holds the live data.

It writes, so it runs only with --allow-writes or `allow_writes: true`: it
creates a scratch database `runbook_scratch_<random>` on the database server,
restores the newest dump into it, compares row counts of the named tables with
the live database (read, read-only, nothing else) and always drops it.

pg_restore runs on the runner, fed with the dump streamed from the host's
`cat`, and connects through the same route as the other PostgreSQL checks
(`via: tunnel`, `container: db`). Not `docker exec db pg_restore` on the host:
the runner's way needs nothing on the host but `cat`, keeps the password in a
local process's environment (never on the host's command lines), and its
deadline and kill are the runner's own. The price: the dump crosses the
network once, and the runner's pg_restore must be as new as the pg_dump that
made the dump (an older one says so, and the check could not look). A plain
dump piped through gzip (`format: sql_gz`, `backup_YYYYMMDD.sql.gz`) is
decompressed on the runner and fed to psql with ON_ERROR_STOP instead.
"""

from __future__ import annotations

import gzip
import logging
import secrets
import zlib
from typing import IO, TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from runbook.describe.model import CheckBase, HostPath
from runbook.errors import CheckError, CheckFailed, CommandTimeout
from runbook.host import pg, pg_archive
from runbook.host.backups import newest
from runbook.host.pg import Session, TableName
from runbook.host.processes import TransportTimeout, environment_now, feed_processes
from runbook.host.routes import Reachable
from runbook.host.target import Target

if TYPE_CHECKING:
    from psycopg import sql

SCRATCH_PREFIX = "runbook_scratch_"
# CREATE and DROP DATABASE: quick unless something is wrong.
ADMIN_TIMEOUT = 60.0
Counts = dict[str, int | None]  # rows per table; None: no such table
log = logging.getLogger(__name__)
RESTORE = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"]
# A plain SQL dump: stop at the first error, no ~/.psqlrc, only errors on stderr.
PSQL = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--output=/dev/null"]


class RestoreCheck(CheckBase, Reachable):
    """The newest pg_dump restores into a scratch database, with row counts close to the live ones."""

    kind: ClassVar[str] = "restore"
    group: ClassVar[str] = "backup"
    default_markers: ClassVar[tuple[str, ...]] = ("incident",)
    writes: ClassVar[str] = (
        "creates, fills and drops a scratch database runbook_scratch_* on the database server"
    )

    directory: HostPath
    pattern: str = Field(default="pgdump_*.dump", min_length=1, pattern=r"^[^/\x00\n]+$")
    dsn: str = Field(min_length=1, description="the live database: only counted, read-only")
    maintenance_db: str = Field(
        default="postgres", pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$", description="where CREATE/DROP run"
    )
    format: Literal["pg_custom", "sql_gz"] = Field(
        default="pg_custom",
        description="pg_custom (pg_dump -Fc, pg_restore) or sql_gz (pg_dump | gzip, psql)",
    )
    tables: list[TableName] = Field(min_length=1, description="tables whose row counts are compared")
    tolerance_percent: float = Field(default=10.0, ge=0, le=100, description="restored vs live rows")
    timeout: float = Field(default=900.0, gt=0, le=6 * 3600, description="the whole restore")


def verify(check: RestoreCheck, target: Target) -> None:
    from psycopg import sql  # here: the kind's model is imported with every description

    latest, _ = newest(check, target)
    scratch = SCRATCH_PREFIX + secrets.token_hex(6)
    _admin(check, target, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        _restore(check, target, latest.path, scratch)
        restored = _counts(check, target, scratch)
    finally:
        left_behind = _drop(check, target, scratch)
    if left_behind:
        raise CheckError(left_behind)
    live = _counts(check, target, None)
    table = _side_by_side(check.tables, live, restored)
    log.info("restore test of %s into %s:\n%s", latest.path, scratch, table)
    _compare(check, latest.path, live, restored, table)


def _admin(check: RestoreCheck, target: Target, statement: sql.Composable) -> None:
    pg.with_session(
        check,
        target,
        check.dsn,
        lambda session: session.rows(statement),
        timeout=ADMIN_TIMEOUT,
        dbname=check.maintenance_db,
        writable=True,
    )


def _drop(check: RestoreCheck, target: Target, scratch: str) -> str | None:
    """DROP ... WITH (FORCE) (PostgreSQL 13+) also ends a pg_restore still connected.

    Never raises: it runs while another error may be on its way out. What it could not do
    is logged, and returned for the caller to report when nothing else went wrong.
    """
    assert scratch.startswith(SCRATCH_PREFIX)
    from psycopg import sql

    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
    try:
        _admin(check, target, statement)
    except CheckError as exc:
        said = f"the scratch database {scratch} may be left behind, drop it by hand: {exc}"
        log.warning("%s", said)
        return said
    return None


def _restore(check: RestoreCheck, target: Target, path: str, scratch: str) -> None:
    from psycopg.conninfo import make_conninfo

    database = pg.parse_dsn(check.dsn, dbname=scratch)
    params, tunnel = pg.reached(check, target, database)
    password = params.pop("password", None)
    params.update(application_name=f"{pg.APPLICATION_NAME}-restore", connect_timeout="10")
    environment = {**environment_now(), **({"PGPASSWORD": password} if password else {})}
    program = RESTORE if check.format == "pg_custom" else PSQL
    argv = [*program, f"--dbname={make_conninfo(**params)}"]
    try:
        with target.open_stream(path, check.timeout) as stream:
            source: IO[bytes] = gzip.GzipFile(fileobj=stream) if check.format == "sql_gz" else stream
            (done,) = feed_processes(source, [argv], timeout=check.timeout, env=environment)
    except FileNotFoundError:
        raise CheckError(
            f"{program[0]} is not installed on the runner (apt-get install postgresql-client)"
        ) from None
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise CheckFailed(
            f"{path} restores into a scratch database", f"{path} is corrupt: {type(exc).__name__}: {exc}"
        ) from None
    except TransportTimeout:
        raise CommandTimeout(f"restoring {path} took longer than {check.timeout:g}s") from None
    if done.rc != 0:
        said = " ".join(done.stderr.decode(errors="replace").split())[-600:] or f"exit {done.rc}"
        if pg_archive.TOO_NEW in said:
            raise CheckError(f"the runner's pg_restore cannot read {path}: {said}")
        tunnel_said = tunnel.said()
        raise CheckFailed(
            f"{path} restores into a scratch database",
            f"{program[0]} into {scratch} failed: {said}",
            {"tunnel": tunnel_said} if tunnel_said else None,
        )


def _counts(check: RestoreCheck, target: Target, dbname: str | None) -> Counts:
    """Rows of each table (None: no such table), read-only, in the live or the scratch database."""

    import psycopg

    def count(session: Session) -> dict[str, int | None]:
        found: dict[str, int | None] = {}
        for table in check.tables:
            try:
                found[table] = session.count_rows(table)
            except psycopg.errors.UndefinedTable:
                found[table] = None
        return found

    return pg.with_session(check, target, check.dsn, count, timeout=check.timeout, dbname=dbname)


def _compare(check: RestoreCheck, path: str, live: Counts, restored: Counts, table: str) -> None:
    wrong = []
    for name in check.tables:
        was, got = live[name], restored[name]
        if was is None or got is None:
            wrong.append(
                f"{name}: {'missing in the dump' if got is None else 'missing in the live database'}"
            )
        elif abs(got - was) > was * check.tolerance_percent / 100:
            wrong.append(f"{name}: {got} restored vs {was} live")
    if wrong:
        raise CheckFailed(
            f"{path} restores with row counts within {check.tolerance_percent:g}% of the live database",
            "; ".join(wrong),
            {"row counts": table},
        )


def _side_by_side(tables: list[str], live: Counts, restored: Counts) -> str:
    width = max(len("table"), *map(len, tables))
    rows = [f"{'table':<{width}} {'live':>12} {'restored':>12}"]
    for name in tables:
        rows.append(f"{name:<{width}} {_shown(live[name]):>12} {_shown(restored[name]):>12}")
    return "\n".join(rows)


def _shown(count: int | None) -> str:
    return "missing" if count is None else str(count)
