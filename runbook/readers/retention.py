"""Retention of run folders: older than `--keep-days` (default 30, as the calendar runbook keeps backups).

Why: a checklist that runs every hour fills a disk in months. After each run, run folders
under the reports folder whose start (the UTC time in their name) is older than the limit
are deleted, except: the newest run, the run `latest` points at, this run, and every run an
open incident bundle refers to (runbook.readers.bundle). Only folders named like run folders
(`20261123T081500Z-daily`) are ever touched. `--keep-days=0` keeps everything. The history
store keeps its rows: they are small, and the timeline outlives the HTML.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbook.readers.bundle import open_references
from runbook.readers.rundir import LATEST, STAMP, started_order

DEFAULT_KEEP_DAYS = 30
RUN_FOLDER = re.compile(r"^\d{8}T\d{6}Z-[a-z0-9-]+$")


def run_folders(reports_dir: Path) -> list[Path]:
    if not reports_dir.is_dir():
        return []
    return [
        path
        for path in reports_dir.iterdir()
        if RUN_FOLDER.match(path.name) and path.is_dir() and not path.is_symlink()
    ]


def started(folder: Path) -> datetime:
    return datetime.strptime(folder.name.split("-", 1)[0], STAMP).replace(tzinfo=UTC)


def prune(reports_dir: Path, *, keep_days: float, now: datetime, keep: set[str] | None = None) -> list[Path]:
    """Delete the run folders past the limit that nothing protects; returns what was deleted."""
    if keep_days <= 0:
        return []
    folders = run_folders(reports_dir)
    if not folders:
        return []
    protected = set(keep or ()) | open_references(reports_dir)
    protected.add(max(folders, key=lambda folder: started_order(folder.name)).name)
    with contextlib.suppress(OSError):  # no `latest` yet
        protected.add(os.readlink(reports_dir / LATEST))
    cutoff = now - timedelta(days=keep_days)
    deleted = []
    for folder in sorted(folders):
        if folder.name in protected or started(folder) >= cutoff:
            continue
        shutil.rmtree(folder)
        deleted.append(folder)
    return deleted
