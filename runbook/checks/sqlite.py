"""SQLite journal mode from the database header: bytes 18-19 are 2 for WAL, 1 for rollback.

Reading two header bytes needs no sqlite3 binary on the host and cannot change
the database (`PRAGMA journal_mode` on a writable connection could).
"""

from __future__ import annotations

from runbook.hosts import Target
from runbook.outcome import CheckError, CheckFailed
from runbook.schema import SqliteCheck

from .containers import require_running

MODES = {(2, 2): "wal", (1, 1): "rollback"}


def verify(check: SqliteCheck, target: Target) -> None:
    read = "od -An -tu1 -j18 -N2 -- %s"
    if check.container:
        require_running(target, check.container)
        result = target.run(f"docker exec %s {read}", check.container, check.path)
    else:
        result = target.run(read, check.path)
    numbers = tuple(int(value) for value in result.stdout.split())
    if result.rc != 0 or len(numbers) != 2:
        where = f" in {check.container}" if check.container else ""
        raise CheckError(f"cannot read the header of {check.path}{where}: {result.stderr.strip()[:300]}")
    mode = MODES.get(numbers, f"unknown (header bytes {numbers[0]},{numbers[1]})")  # type: ignore[arg-type]
    if mode != check.journal_mode:
        raise CheckFailed(
            f"{check.path} in {check.journal_mode} journal mode",
            f"journal mode {mode} != {check.journal_mode} (header bytes 18-19: {numbers[0]},{numbers[1]})",
        )
