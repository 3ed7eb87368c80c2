"""Whole-process measurements shared by bench_daily, bench_vs_ssh and bench_scaling.

A row of those tables is one process from start to exit. The child is started with Popen and
reaped with os.wait4, whose rusage is that child's alone (its own CPU and that of the children
it waited for, e.g. stock testinfra's `ssh` processes), so runs beside it on the machine are not
counted and nothing needs RUSAGE_CHILDREN deltas. ru_maxrss is the largest single process of that
tree; `tree=True` also samples the sum of VmRSS over the child and all its descendants (every
20 ms from /proc), for runners that spread over processes.

The lab is shared: `hold_lab_lock` makes sure the benchmark holds /tmp/runbook-lab.lock, taken
by a `flock /tmp/runbook-lab.lock ...` wrapper (inherited descriptor) or else here, for the
whole script, so a wait for the lock is never inside a measured row.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
LAB_LOCK = Path("/tmp/runbook-lab.lock")
LAB_ENV = Path("/var/lib/runbook-lab/lab.env")
_held: list[Any] = []  # the lock's file, kept open while the script runs


def hold_lab_lock() -> str:
    """Hold the lab lock for the rest of this process; says how it is held."""
    for entry in Path("/proc/self/fd").iterdir():
        try:
            if Path(os.readlink(entry)) == LAB_LOCK:
                return f"held by the flock wrapper (fd {entry.name})"
        except OSError:
            continue
    handle = LAB_LOCK.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for {LAB_LOCK} (another run holds the lab)...", file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    _held.append(handle)
    return "taken by this script"


def lab_env() -> dict[str, str]:
    """os.environ plus the lab's secrets (lab.env, as `set -a; . lab.env` would)."""
    env = dict(os.environ)
    if LAB_ENV.exists():
        for line in LAB_ENV.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() and not name.lstrip().startswith("#"):
                env[name.strip()] = value.strip().strip("'\"")
    return env


def suite_env(base: dict[str, str] | None = None, *extra_paths: Path) -> dict[str, str]:
    """The environment of a measured pytest: this checkout and bench/ first on the path."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith("PYTEST_")}
    paths = [str(ROOT), str(BENCH), *map(str, extra_paths)]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@dataclass
class Measured:
    wall: float  # s, parent's clock from just before Popen to the reap
    cpu: float  # s, user + sys of the child and its reaped descendants
    peak_mb: float  # largest single process of the tree (ru_maxrss)
    tree_mb: float | None  # sampled sum over the process tree, if asked
    started: float  # time.time() just before Popen (for "start-up to the first check")
    returncode: int
    output: str  # stdout and stderr, merged


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over `root` and its descendants (one pass over /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as handle:
                status = handle.read()
        except OSError:
            continue
        pid = int(entry.name)
        found = re.search(rb"^PPid:\s+(\d+)", status, re.M)
        parents[pid] = int(found.group(1)) if found else 0
        memory = re.search(rb"^VmRSS:\s+(\d+)", status, re.M)
        rss[pid] = int(memory.group(1)) if memory else 0
    total, frontier = rss.get(root, 0), [root]
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            total += rss.get(child, 0)
            frontier.append(child)
    return total


def run_measured(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    tree: bool = False,
    timeout: float = 1800,
) -> Measured:
    """Run argv to its exit; wall, CPU and peak memory of that process (see the module docstring)."""
    with tempfile.TemporaryFile() as output:
        started_epoch = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        peak_tree = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak_tree[0] = max(peak_tree[0], _tree_rss_kb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True) if tree else None
        if sampler:
            sampler.start()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
            done.set()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen.wait
        if sampler:
            sampler.join()
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    return Measured(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_mb=usage.ru_maxrss / 1024,
        tree_mb=peak_tree[0] / 1024 if tree else None,
        started=started_epoch,
        returncode=process.returncode,
        output=text,
    )


@dataclass
class Row:
    """The runs of one table row and what their reports said."""

    label: str
    runs: list[Measured] = field(default_factory=list)
    outcomes: list[dict[str, str]] = field(default_factory=list)  # per run: check id -> outcome
    extra: list[dict[str, float]] = field(default_factory=list)  # per run: named numbers
    failed: str = ""

    def median(self, name: str) -> float:
        values = [getattr(run, name) for run in self.runs if getattr(run, name) is not None]
        return statistics.median(values) if values else float("nan")

    def median_extra(self, name: str) -> float:
        values = [numbers[name] for numbers in self.extra if name in numbers]
        return statistics.median(values) if values else float("nan")

    def counts(self) -> str:
        """Outcome counts of each run, e.g. `22 passed 1 failed` (one text if all runs agree)."""
        texts = []
        for outcomes in self.outcomes:
            tally: dict[str, int] = {}
            for outcome in outcomes.values():
                tally[outcome] = tally.get(outcome, 0) + 1
            texts.append(" ".join(f"{n} {name}" for name, n in sorted(tally.items(), key=lambda x: -x[1])))
        distinct = list(dict.fromkeys(texts))
        return distinct[0] if len(distinct) == 1 else " / ".join(texts)


def outcomes_of(reports: Path) -> dict[str, str]:
    """Check id -> outcome from the run's summary.json (reports/latest), {} if none was written."""
    summary = reports / "latest" / "summary.json"
    if not summary.exists():
        return {}
    data = json.loads(summary.read_text(encoding="utf-8"))
    return {check["id"]: check["outcome"] for check in data.get("checks", [])}


def pytest_tail(output: str, lines: int = 3) -> str:
    """The last lines pytest printed, on one line (for a row that failed to run)."""
    return " | ".join(output.strip().splitlines()[-lines:])[:300]


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN: no such number


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A markdown table; `align` gives each column l or r (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if side == "r" else "---" for side in align) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
