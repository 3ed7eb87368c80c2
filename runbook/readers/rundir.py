"""Where a run's reports go: `<reports_dir>/<UTC time>-<markers>/` and `<reports_dir>/latest`.

Without `--html` / `--junitxml` every run gets its own folder, named so that
`ls reports/` reads as a history (`20261123T081500Z-daily`), holding
report.html (self-contained), junit.xml and summary.json; `latest` is a
relative symlink to the newest one. With `--html` and/or `--junitxml` the
user's paths win, and summary.json goes next to the HTML (else the JUnit file).
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

HTML_NAME = "report.html"
JUNIT_NAME = "junit.xml"
SUMMARY_NAME = "summary.json"
LATEST = "latest"
STAMP = "%Y%m%dT%H%M%SZ"
MAX_SLUG = 60


@dataclass(frozen=True)
class RunPaths:
    summary: Path
    html: Path | None = None
    junit: Path | None = None
    folder: Path | None = None  # set when the suite chose the paths (its own run folder)

    def files(self) -> list[Path]:
        return [path for path in (self.html, self.junit, self.summary) if path is not None]


def slug(marker_expression: str | None) -> str:
    """'daily', 'daily-and-not-smoke', or 'all' when no -m was given."""
    text = re.sub(r"[^a-z0-9]+", "-", (marker_expression or "").lower()).strip("-")
    return text[:MAX_SLUG].rstrip("-") or "all"


def reports_dir(config: pytest.Config) -> Path:
    """--reports-dir (relative to where pytest was started) or ini runbook_reports_dir (to rootdir)."""
    option = config.getoption("runbook_reports_dir", None)
    if option:
        path, base = Path(option).expanduser(), config.invocation_params.dir
    else:
        path, base = Path(config.getini("runbook_reports_dir") or "reports"), config.rootpath
    folder = path if path.is_absolute() else base / path
    if folder.exists() and not folder.is_dir():
        raise pytest.UsageError(f"--reports-dir: {folder} is a file, not a folder for the run's reports")
    return folder


def make_run_folder(base: Path, name: str) -> Path:
    """A new folder; two runs started in the same second get `-2`, `-3`, ... (mkdir is the lock)."""
    base.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = base / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise pytest.UsageError(f"{base}: cannot make a run folder named {name} (too many)")


def _user_path(value: str | None) -> Path | None:
    """A path as --html and --junitxml are read (env vars, ~, relative to the current dir)."""
    if not value:
        return None
    return Path.cwd() / Path(os.path.expandvars(value)).expanduser()


def plan(config: pytest.Config, now: datetime) -> RunPaths:
    """Decide the paths; set the one junitxml reads in its configure (report.html is ours)."""
    html = _user_path(getattr(config.option, "htmlpath", None))
    junit = _user_path(getattr(config.option, "xmlpath", None))
    if html is not None or junit is not None:
        beside = html if html is not None else junit
        assert beside is not None
        return RunPaths(summary=beside.parent / SUMMARY_NAME, html=html, junit=junit)
    name = f"{now.strftime(STAMP)}-{slug(config.getoption('markexpr', None))}"
    folder = make_run_folder(reports_dir(config), name)
    config.option.xmlpath = str(folder / JUNIT_NAME)
    return RunPaths(
        summary=folder / SUMMARY_NAME, html=folder / HTML_NAME, junit=folder / JUNIT_NAME, folder=folder
    )


def started_order(name: str) -> tuple[str, int]:
    """Run folders sort by start time: '20261123T081500Z-daily-2' -> ('20261123T081500Z', 2)."""
    stamp = name.split("-", 1)[0]
    suffix = name.rsplit("-", 1)[-1]
    return stamp, int(suffix) if suffix.isdigit() and name.count("-") >= 2 else 1


def point_latest(folder: Path) -> Path:
    """`latest` -> folder (relative), replaced atomically, unless it points at a run started later.

    A slow run that finishes after a newer one must not take `latest` back in time.
    """
    link = folder.parent / LATEST
    with open(folder.parent / f".{LATEST}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs finishing at once: one decides after the other
        try:
            current = os.readlink(link)
        except OSError:
            current = None
        newer = current and (folder.parent / current).is_dir()
        if newer and started_order(str(current)) > started_order(folder.name):
            return link
        return _replace_link(link, folder)


def _replace_link(link: Path, folder: Path) -> Path:
    temporary = folder.parent / f".{LATEST}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(folder.name, target_is_directory=True)
    try:
        os.replace(temporary, link)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    return link


def display(path: Path, base: Path) -> str:
    """Relative to where pytest was started when below it, else absolute."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
