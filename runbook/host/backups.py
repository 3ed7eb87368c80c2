"""A backup folder on a host: its archives, newest first, with the host's own clock.

Listed once per run and folder (`find -printf`, on the host), shared by the kinds that read
backups (backups, restore).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from runbook.errors import CheckError, CheckFailed
from runbook.host.target import Target


class Folder(Protocol):
    """Where backups are: a BackupCheck, or another kind that reads them (the restore test)."""

    @property
    def directory(self) -> str: ...

    @property
    def pattern(self) -> str: ...


@dataclass(frozen=True)
class Archive:
    path: str
    mtime: float
    size: int


def listing(check: Folder, target: Target) -> tuple[list[Archive], float]:
    """All matching archives, newest first, and the host's clock (ages use the host's time)."""

    def read() -> tuple[list[Archive], float]:
        # -H: a backup folder that is a symlink (a common layout) is followed; NUL-separated
        # entries: a file name with a newline is one entry, not two phantoms.
        result = target.run(
            "date +%%s; find -H %s -maxdepth 1 -type f -name %s -printf '%%T@ %%s %%p\\0'",
            check.directory,
            check.pattern,
        )
        clock, _, entries = result.stdout.partition("\n")
        if not clock.strip().isdigit():
            raise CheckError(f"cannot list {check.directory}: {result.stderr.strip()[:300]}")
        if result.rc != 0 and not entries:
            raise CheckFailed(
                f"backups in {check.directory}",
                f"cannot list {check.directory}: {result.stderr.strip()[:200]}",
            )
        archives = []
        for entry in entries.split("\0"):
            fields = entry.split(" ", 2)
            if len(fields) == 3:
                mtime, size, path = fields
                archives.append(Archive(path, float(mtime), int(size)))
        archives.sort(key=lambda archive: archive.mtime, reverse=True)
        return archives, float(clock)

    return target.cached(("backups", check.directory, check.pattern), read)


def newest(check: Folder, target: Target) -> tuple[Archive, float]:
    archives, now = listing(check, target)
    if not archives:
        raise CheckFailed(
            f"a backup {check.pattern} in {check.directory}",
            f"no backups found: {check.directory}/{check.pattern} matches nothing",
        )
    return archives[0], now
