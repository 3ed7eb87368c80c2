"""PostgreSQL sessions the checks open (psycopg 3): read-only, bounded in time, reached as described.

Every session sets `default_transaction_read_only` before its first query, so
a check can never change the database it checks (the restore test's session on
its scratch database is the one writable exception, asked for by name), and a
`statement_timeout`, `lock_timeout` and idle timeout, so the server ends what
the runner stops waiting for. The whole exchange (tunnel, connect, queries)
runs under one watchdog deadline on the runner as well.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, LiteralString, TypeVar

from pydantic import Field

from runbook.errors import CheckError
from runbook.host.deadline import call_with_deadline
from runbook.host.routes import Reachable, route, where
from runbook.host.target import Target
from runbook.host.transports.base import Tunnel

# psycopg is imported where a session is opened, not here: this module is imported with every
# description (the kinds' models), and psycopg costs a run 0.1-0.17 s that checks no database.
if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    # A statement: a literal, or composed with sql.Identifier / sql.Literal (never by formatting strings).
    Query = LiteralString | sql.Composable

T = TypeVar("T")

# `name` or `schema.name`, matched exactly as written (quoted as identifiers, so Prisma's "User" works).
TableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$")]

DEFAULT_PORT = 5432
# How long past the check's own timeout the watchdog waits (connect and teardown).
GRACE = 5.0
APPLICATION_NAME = "runbook-suite"


class DatabaseError(CheckError):
    """The server could not be reached, refused the login or a query: a failure for `select_one`."""


@dataclass(frozen=True)
class Database:
    """A DSN taken apart: libpq parameters, where the server is, and a display without the password."""

    params: dict[str, str]
    host: str
    port: int

    @property
    def display(self) -> str:
        user = self.params.get("user", "")
        name = self.params.get("dbname", "")
        return f"{user + '@' if user else ''}{self.host}:{self.port}/{name}"


def parse_dsn(dsn: str, *, dbname: str | None = None) -> Database:
    """`postgresql://user:${PW}@db:5432/map` or `host=db dbname=map ...` (its database replaced by
    `dbname` if given); CheckError when unusable."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as exc:
        raise CheckError(f"not a PostgreSQL DSN: {exc}") from None
    host = params.get("host", "")
    if not host or host.startswith("/") or "," in host:
        raise CheckError("the DSN needs one TCP host (host=... or postgresql://user@HOST:PORT/db)")
    try:
        port = int(params.get("port") or DEFAULT_PORT)
    except ValueError:
        raise CheckError(f"DSN port {params.get('port')!r} is not a number") from None
    if dbname is not None:
        params["dbname"] = dbname
    return Database(params, host, port)


class Session:
    """One open connection: queries by parameters and identifiers, never by string building."""

    def __init__(self, connection: psycopg.Connection[Any], connect_seconds: float, display: str) -> None:
        self.connection = connection
        self.connect_seconds = connect_seconds
        self.display = display

    def rows(self, query: Query, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def value(self, query: Query, params: tuple[Any, ...] = ()) -> Any:
        found = self.rows(query, params)
        return found[0][0] if found else None

    def count_rows(self, table: str) -> int:
        """`SELECT count(*)` of a table written `name` or `schema.name`."""
        from psycopg import sql

        return int(self.value(sql.SQL("SELECT count(*) FROM {}").format(table_identifier(table))))


def table_identifier(table: str) -> sql.Identifier:
    from psycopg import sql

    return sql.Identifier(*table.split(".", 1))


def with_session(
    check: Reachable,
    target: Target,
    dsn: str,
    work: Callable[[Session], T],
    *,
    timeout: float,
    dbname: str | None = None,
    writable: bool = False,
) -> T:
    """Open a session as the check describes, run `work` on it and close it, all within the deadline."""
    database = parse_dsn(dsn, dbname=dbname)

    def whole() -> T:
        with _session(check, target, database, timeout=timeout, writable=writable) as session:
            return work(session)

    return call_with_deadline(whole, timeout + GRACE, f"PostgreSQL at {database.display}")


def reached(check: Reachable, target: Target, database: Database) -> tuple[dict[str, str], Tunnel]:
    """libpq parameters that reach the database as the check describes, and the tunnel they use."""
    tunnel = route(check, target, database.host, database.port)
    params = dict(database.params)
    if tunnel.local != (database.host, database.port):
        # hostaddr: connect to the forward, while TLS still verifies the server's own name.
        params.update(hostaddr=tunnel.local[0], port=str(tunnel.local[1]))
    return params, tunnel


@contextmanager
def _session(
    check: Reachable, target: Target, database: Database, *, timeout: float, writable: bool
) -> Iterator[Session]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    params, tunnel = reached(check, target, database)
    display = database.display + where(check, target)
    started = time.monotonic()
    try:
        connection = psycopg.connect(
            make_conninfo(**params),
            autocommit=True,
            connect_timeout=max(2, math.ceil(timeout)),
            application_name=APPLICATION_NAME,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
        )
    except psycopg.Error as exc:
        said = tunnel.said()
        reason = " ".join(str(exc).split()) + (f" (tunnel: {said[-300:]})" if said else "")
        raise DatabaseError(f"cannot connect to PostgreSQL {display}: {reason}") from None
    connect_seconds = time.monotonic() - started
    try:
        _limit(connection, timeout, writable=writable)
        yield Session(connection, connect_seconds, display)
    except psycopg.Error as exc:
        raise DatabaseError(f"PostgreSQL {display}: {' '.join(str(exc).split())}") from None
    finally:
        connection.close()


def _limit(connection: psycopg.Connection[Any], timeout: float, *, writable: bool) -> None:
    """Read-only unless asked, and every statement, lock wait and idle transaction bounded."""
    from psycopg import sql

    milliseconds = sql.Literal(f"{max(1, int(timeout * 1000))}ms")
    if not writable:
        connection.execute("SET default_transaction_read_only = on")
    for setting in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
        connection.execute(sql.SQL("SET {} = {}").format(sql.Identifier(setting), milliseconds))
