"""No false red: the five-system daily checklist run back to back on the healthy lab, N times.

Each run is the real thing (`pytest -m daily` against systems/lab, one shared reports folder
and history, as cron keeps them); every `--overlap`-th run starts a second run beside it, as
cron and an on-call at the same moment would. The lab is healed once before the first run
and never touched again: any red check is the suite blaming a healthy service. Prints one
line per run and, at the end, each check that was ever red with how often and its found
values; exit 0 only when no run had a red check.

    set -a; . /var/lib/runbook-lab/lab.env; set +a
    .venv/bin/python bench/bench_soak.py [--runs 100] [--overlap 10] [--reports /tmp/soak]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def start(reports: Path) -> subprocess.Popen[str]:
    command = [
        PYTHON,
        "-m",
        "pytest",
        "-m",
        "daily",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--reports-dir={reports}",
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def red_checks(output: str, reports: Path) -> dict[str, str]:
    """The run's red checks (id -> found), from the summary.json its own output names."""
    folder = next(
        (
            line.split("runbook reports: ", 1)[1].split("/ (", 1)[0]
            for line in output.splitlines()
            if "runbook reports: " in line
        ),
        None,
    )
    if folder is None:
        return {"(no report)": output[-300:]}
    summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
    return {
        check["id"]: check.get("found") or check.get("message") or ""
        for check in summary["checks"]
        if check["outcome"] in {"failed", "error"}
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument(
        "--overlap", type=int, default=10, help="every Nth run has a second run beside it (0: never)"
    )
    parser.add_argument("--reports", type=Path, default=Path("/tmp/runbook-soak"))
    args = parser.parse_args()
    shutil.rmtree(args.reports, ignore_errors=True)
    subprocess.run([PYTHON, "-m", "lab", "heal"], cwd=ROOT, check=True, capture_output=True)
    seen: Counter[str] = Counter()
    found: dict[str, set[str]] = defaultdict(set)
    red_runs, walls = 0, []
    for index in range(1, args.runs + 1):
        started = time.monotonic()
        runs = [start(args.reports)]
        if args.overlap and index % args.overlap == 0:
            runs.append(start(args.reports))
        reds = 0
        for process in runs:
            output, _ = process.communicate(timeout=600)
            red = red_checks(output, args.reports)
            reds += len(red)
            red_runs += bool(red)
            for check, text in red.items():
                seen[check] += 1
                found[check].add(text[:200])
        walls.append(time.monotonic() - started)
        overlap = " (with an overlapping run)" if len(runs) > 1 else ""
        print(f"run {index:3}: {walls[-1]:5.1f}s, {reds} red{overlap}", flush=True)
    median = sorted(walls)[len(walls) // 2]
    print(f"\n{args.runs} rounds, {red_runs} run(s) with a red check; median wall {median:.1f}s")
    for check, count in seen.most_common():
        print(f"  {check}: red {count}x: {'; '.join(sorted(found[check]))}")
    return 1 if red_runs else 0


if __name__ == "__main__":
    sys.exit(main())
