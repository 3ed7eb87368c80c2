"""Prisma migrations, as `prisma migrate status` judges them, without running pnpm in production.

Two sides: the migration folders the application ships (`prisma/migrations/<name>/`,
listed read-only with `ls` inside the api container, on the host, or written in the
description) and the rows of `_prisma_migrations`. A migration is applied when it
has a finished row; a row neither finished nor rolled back is one that failed or
is still running; a rolled-back row counts until the migration was applied again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field, model_validator

from runbook.describe.model import ContainerName, HostPath, InContainer
from runbook.errors import CheckError
from runbook.host import docker_host
from runbook.host.pg import TableName
from runbook.host.target import Target

# Prisma names folders `20240101120000_add_index`: never an option, never a path.
MigrationName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")]
SHOWN = 5


class PrismaMigrations(InContainer):
    """Where the shipped migrations are listed: in a container (or service), on the host, or here."""

    container: ContainerName | None = Field(default=None, description="list migrations_dir inside it")
    migrations_dir: HostPath = Field(
        default="/app/prisma/migrations", description="the folder of migration folders"
    )
    migrations: list[MigrationName] | None = Field(
        default=None, min_length=1, description="the shipped migrations, written here instead"
    )
    table: TableName = "_prisma_migrations"

    @model_validator(mode="after")
    def _one_source(self) -> PrismaMigrations:
        if self.migrations is not None and self.container_ref is not None:
            raise ValueError("set migrations (written here) or container/service (listed there), not both")
        return self

    def describe(self) -> str:
        if self.migrations is not None:
            return "the description"
        inside = f" in {self.container_ref}" if self.container_ref is not None else ""
        return f"{self.migrations_dir}{inside}"


def shipped(source: PrismaMigrations, target: Target) -> list[str]:
    """The migration folder names the application ships, sorted as Prisma applies them."""
    if source.migrations is not None:
        return sorted(source.migrations)
    ref = source.container_ref
    if ref is not None:
        container = docker_host.containers(target, ref)[0]  # every replica ships the same image
        result = docker_host.exec_in(target, container, "ls -1p -- %s", source.migrations_dir)
    else:
        result = target.run("ls -1p -- %s", source.migrations_dir)
    if result.rc != 0:
        said = result.stderr.strip()[:300] or f"exit {result.rc}"
        raise CheckError(f"cannot list {source.describe()}: {said}")
    folders = sorted(line[:-1] for line in result.stdout.splitlines() if line.endswith("/"))
    if not folders:
        raise CheckError(f"no migration folders in {source.describe()}")
    return folders


@dataclass(frozen=True)
class Row:
    name: str
    finished_at: datetime | None
    rolled_back_at: datetime | None
    started_at: datetime | None


def problems(folders: list[str], rows: list[Row]) -> list[str]:
    """What `prisma migrate status` would complain of; empty when the database is up to date."""
    applied = {row.name for row in rows if row.finished_at is not None and row.rolled_back_at is None}
    failed = [row for row in rows if row.finished_at is None and row.rolled_back_at is None]
    rolled_back = sorted(
        {row.name for row in rows if row.rolled_back_at is not None and row.name not in applied}
    )
    found = []
    if failed:
        found.append(
            "unfinished (failed or still running): "
            + ", ".join(f"{row.name} (started {_time(row.started_at)})" for row in failed[:SHOWN])
        )
    if rolled_back:
        found.append(f"rolled back and not applied again: {_names(rolled_back)}")
    pending = [name for name in folders if name not in applied and name not in rolled_back]
    pending = [name for name in pending if name not in {row.name for row in failed}]
    if pending:
        found.append(f"{len(pending)} not applied: {_names(pending)}")
    unknown = sorted(applied - set(folders))
    if unknown:
        found.append(f"applied but not shipped (an older image?): {_names(unknown)}")
    return found


def _names(names: list[str]) -> str:
    more = f" (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "unknown"
