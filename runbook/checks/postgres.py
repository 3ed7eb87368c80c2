"""PostgreSQL (Map v12 runbook: `/health` is "a light SELECT 1", migrations `alembic upgrade head`).

Each aspect is one function over a read-only session (`runbook.host.pg`): the
server answers `SELECT 1` (and how long the connection took), `alembic_version`
is at the head revision (Alembic), every shipped Prisma migration is applied
and none failed (runbook.host.prisma), named tables exist, tables hold at least N
rows. A new SQL-backed aspect is a field in the model and a function in
`ASPECTS`. The database is reached from the runner, or
through the host's SSH connection (`via: tunnel`, `container: db`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, TypeVar

from pydantic import Field, model_validator

from runbook.describe.model import CheckBase
from runbook.errors import CheckFailed, CommandTimeout
from runbook.host import migrations, pg, prisma
from runbook.host.migrations import AlembicHead
from runbook.host.pg import Session, TableName
from runbook.host.prisma import PrismaMigrations
from runbook.host.routes import Reachable
from runbook.host.target import Target

T = TypeVar("T")
TABLE_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}


class PostgresCheck(CheckBase, Reachable):
    """A PostgreSQL database: answers SELECT 1, migrations at head, tables present and filled."""

    kind: ClassVar[str] = "postgres"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")
    aspects: ClassVar[tuple[str, ...]] = ("select_one", "alembic_head", "tables", "min_rows", "prisma")

    dsn: str = Field(min_length=1, description="postgresql://user:${PASSWORD_ENV}@host:5432/db")
    select_one: bool | None = None
    max_connect_ms: float | None = Field(default=None, gt=0, le=600_000, description="with select_one")
    alembic_head: AlembicHead | None = None
    version_table: TableName = "alembic_version"
    tables: list[TableName] | None = Field(default=None, min_length=1, description="tables that must exist")
    min_rows: dict[TableName, Annotated[int, Field(ge=0)]] | None = Field(
        default=None, min_length=1, description="table: at least N rows"
    )
    prisma: PrismaMigrations | None = Field(
        default=None, description="_prisma_migrations: every shipped migration applied, none failed"
    )
    timeout: float = Field(default=10.0, gt=0, le=600, description="connect and every statement")

    @model_validator(mode="after")
    def _connect_time_goes_with_select_one(self) -> PostgresCheck:
        if self.max_connect_ms is not None and self.select_one is None:
            raise ValueError("max_connect_ms: belongs to select_one: true")
        return self


def verify(check: PostgresCheck, target: Target) -> None:
    ASPECTS[check.aspect](check, target)


def _select_one(check: PostgresCheck, target: Target) -> None:
    limit = f", connecting within {check.max_connect_ms:g}ms" if check.max_connect_ms else ""
    expected = f"PostgreSQL {pg.parse_dsn(check.dsn).display} answers SELECT 1{limit}"
    try:
        seconds, answer = _session(
            check, target, lambda session: (session.connect_seconds, session.value("SELECT 1"))
        )
    except (pg.DatabaseError, CommandTimeout) as exc:
        raise CheckFailed(expected, str(exc)) from None
    if answer != 1:
        raise CheckFailed(expected, f"SELECT 1 returned {answer!r}")
    if check.max_connect_ms is not None and seconds * 1000 > check.max_connect_ms:
        raise CheckFailed(expected, f"connecting took {seconds * 1000:.0f}ms > {check.max_connect_ms:g}ms")


def _alembic_head(check: PostgresCheck, target: Target) -> None:
    assert check.alembic_head is not None
    import psycopg  # here: the kind's model is imported with every description, psycopg only to check
    from psycopg import sql

    heads = migrations.heads(check.alembic_head, target)
    query = sql.SQL("SELECT version_num FROM {}").format(pg.table_identifier(check.version_table))

    def applied(session: Session) -> set[str] | None:
        try:
            return {str(row[0]) for row in session.rows(query)}
        except psycopg.errors.UndefinedTable:
            return None

    found = _session(check, target, applied)
    head = ", ".join(sorted(heads))
    expected = f"{check.version_table} at the head revision {head} (from {check.alembic_head.describe()})"
    if found is None:
        raise CheckFailed(expected, f"no table {check.version_table}: migrations never ran")
    if found != heads:
        at = ", ".join(sorted(found)) or "empty"
        raise CheckFailed(expected, f"{check.version_table} is {at} != head {head}")


def _tables(check: PostgresCheck, target: Target) -> None:
    assert check.tables is not None
    query = "SELECT relkind FROM pg_catalog.pg_class WHERE oid = to_regclass(%s)"

    def kinds(session: Session) -> dict[str, str | None]:
        return {
            table: session.value(query, (pg.table_identifier(table).as_string(session.connection),))
            for table in check.tables or []
        }

    found = _session(check, target, kinds)
    missing = [table for table, kind in found.items() if kind is None]
    not_tables = [
        f"{table} is a {TABLE_KINDS.get(kind, kind)}"
        for table, kind in found.items()
        if kind not in (None, "r", "p")
    ]
    if missing or not_tables:
        problems = ([f"missing: {', '.join(missing)}"] if missing else []) + not_tables
        raise CheckFailed(f"tables {', '.join(check.tables)} exist", "; ".join(problems))


def _min_rows(check: PostgresCheck, target: Target) -> None:
    assert check.min_rows is not None
    counts = _session(
        check, target, lambda session: {table: session.count_rows(table) for table in check.min_rows or {}}
    )
    short = [
        f"{table} has {counts[table]} rows < {least}"
        for table, least in check.min_rows.items()
        if counts[table] < least
    ]
    if short:
        wanted = ", ".join(f"{table} >= {least}" for table, least in check.min_rows.items())
        raise CheckFailed(f"row counts {wanted}", "; ".join(short))


def _prisma(check: PostgresCheck, target: Target) -> None:
    assert check.prisma is not None
    import psycopg
    from psycopg import sql

    folders = prisma.shipped(check.prisma, target)
    table = check.prisma.table
    query = sql.SQL(
        "SELECT migration_name, finished_at, rolled_back_at, started_at FROM {} ORDER BY started_at"
    ).format(pg.table_identifier(table))

    def rows(session: Session) -> list[prisma.Row] | None:
        try:
            return [prisma.Row(*row) for row in session.rows(query)]
        except psycopg.errors.UndefinedTable:
            return None

    found = _session(check, target, rows)
    expected = (
        f"{table}: the {len(folders)} migrations of {check.prisma.describe()} applied, "
        "none unfinished or rolled back"
    )
    if found is None:
        raise CheckFailed(expected, f"no table {table}: prisma migrate deploy never ran")
    problems = prisma.problems(folders, found)
    if problems:
        raise CheckFailed(
            expected,
            f"{table}: {'; '.join(problems)}",
            {"shipped migrations": "\n".join(folders), table: "\n".join(row.name for row in found)},
        )


def _session(check: PostgresCheck, target: Target, work: Callable[[Session], T]) -> T:
    return pg.with_session(check, target, check.dsn, work, timeout=check.timeout)


ASPECTS: dict[str, Callable[[PostgresCheck, Target], None]] = {
    "select_one": _select_one,
    "alembic_head": _alembic_head,
    "tables": _tables,
    "min_rows": _min_rows,
    "prisma": _prisma,
}
