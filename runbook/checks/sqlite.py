"""SQLite journal mode from the database header: bytes 18-19 are 2 for WAL, 1 for rollback.

Reading two header bytes needs no sqlite3 binary on the host and cannot change
the database (`PRAGMA journal_mode` on a writable connection could).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from runbook import docker_host
from runbook.docker_host import Container
from runbook.hosts import Target
from runbook.model import CheckBase, ContainerName, HostPath, InContainer
from runbook.outcome import CheckError, CheckFailed


class SqliteCheck(CheckBase, InContainer):
    """An SQLite database's journal mode, read from its header (never opened for writing)."""

    kind: ClassVar[str] = "sqlite"
    group: ClassVar[str] = "config"
    default_markers: ClassVar[tuple[str, ...]] = ("daily",)

    path: HostPath
    container: ContainerName | None = None
    journal_mode: Literal["wal", "rollback"] = "wal"


MODES = {(2, 2): "wal", (1, 1): "rollback"}


def verify(check: SqliteCheck, target: Target) -> None:
    ref = check.container_ref
    for container in docker_host.containers(target, ref) if ref else [None]:
        _verify_one(check, target, container)


def _verify_one(check: SqliteCheck, target: Target, container: Container | None) -> None:
    read = "od -An -tu1 -j18 -N2 -- %s"
    if container:
        result = docker_host.exec_in(target, container, read, check.path)
    else:
        result = target.run(read, check.path)
    numbers = tuple(int(value) for value in result.stdout.split())
    where = f" in {container}" if container else ""
    if result.rc != 0 or len(numbers) != 2:
        raise CheckError(f"cannot read the header of {check.path}{where}: {result.stderr.strip()[:300]}")
    mode = MODES.get(numbers, f"unknown (header bytes {numbers[0]},{numbers[1]})")  # type: ignore[arg-type]
    if mode != check.journal_mode:
        raise CheckFailed(
            f"{check.path} in {check.journal_mode} journal mode",
            f"journal mode {mode} != {check.journal_mode} "
            f"(header bytes 18-19: {numbers[0]},{numbers[1]}){where}",
        )
