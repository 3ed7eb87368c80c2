"""Issue 21 goal 1: the five-system daily checklist as one process, against the goals.

    cd CHECKOUT; flock /tmp/runbook-lab.lock env PYTHONPATH=$PWD \\
        .venv/bin/python bench/bench_daily.py [--repeat 5] [-k "not perf-sanity"] [--system NAME ...]

(the lab's secrets are read from /var/lib/runbook-lab/lab.env; without the flock wrapper the
script takes the lab lock itself for its whole run). Each row runs
`python -m pytest -m daily -k EXPR -q` on the lab (pyproject.toml's systems/lab) `--repeat` times,
each run one whole process, with its own reports folder per row (so from the second run on,
history has a previous run, as every morning); the table shows medians:

- wall s: from just before Popen to the exit, in this script's clock;
- CPU s: user + sys of the pytest process and the processes it waited for (os.wait4);
- to first check s: process start to the first test's `pytest_runtest_setup` (written by
  bench/plugin_first_check.py, loaded with `-p`): interpreter, imports, plugins, descriptions,
  collection; checks run ahead start at that moment too;
- peak MB: the process's peak RSS (ru_maxrss);
- outcomes: the checks' outcomes from the run's summary.json (per run if they differ);
- `--co`: the same command with `--co` (collection only: nothing reaches a host).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from measure_kit import (
    PYTHON,
    ROOT,
    Row,
    fmt,
    hold_lab_lock,
    lab_env,
    load_average,
    outcomes_of,
    pytest_tail,
    run_measured,
    suite_env,
    table,
)

GOALS = {"wall": 3.0, "cpu": 2.0, "first_check": 0.8, "peak_mb": 150.0}
GOAL_TEXT = {
    "wall": "wall under 3 s",
    "cpu": "CPU under 2 s",
    "first_check": "start-up to the first check under 0.8 s",
    "peak_mb": "peak RSS under 150 MB",
}


def measure(row: Row, argv: list[str], reports: Path, repeat: int, collect_only: bool) -> None:
    env = suite_env(lab_env())
    for number in range(repeat):
        marker = reports / f"first-check-{number}"
        env["BENCH_FIRST_CHECK_FILE"] = str(marker)
        run = run_measured([*argv, f"--reports-dir={reports}"], env=env)
        if run.returncode not in (0, 1) or (collect_only and run.returncode != 0):
            row.failed = f"exit {run.returncode}: {pytest_tail(run.output)}"
            return
        row.runs.append(run)
        first = float(marker.read_text()) - run.started if marker.exists() else float("nan")
        row.extra.append({"first_check": first})
        if not collect_only:
            row.outcomes.append(outcomes_of(reports))
        print(
            f"  {row.label} run {number + 1}: wall {run.wall:.2f} s, CPU {run.cpu:.2f} s, "
            f"first check {fmt(first)} s, peak {run.peak_mb:.0f} MB",
            file=sys.stderr,
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "-k", dest="keyword", default="not perf-sanity", help="pytest -k (default: %(default)s)"
    )
    parser.add_argument("--system", action="append", default=[], help="only this system (smoke tests)")
    parser.add_argument("--no-co", action="store_true", help="skip the collection-only row")
    args = parser.parse_args()
    lock = hold_lab_lock()
    base = [PYTHON, "-m", "pytest", "-m", "daily", "-k", args.keyword, "-q", "-p", "plugin_first_check"]
    base += [f"--system={name}" for name in args.system]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-daily-") as folder:
        plan = [("pytest -m daily", [], False)]
        if not args.no_co:
            plan.append(("pytest -m daily --co", ["--co"], True))
        for label, extra, collect_only in plan:
            row = Row(label)
            reports = Path(folder) / f"reports-{len(rows)}"
            reports.mkdir()
            measure(row, base + extra, reports, args.repeat, collect_only)
            rows.append(row)

    selected = ", ".join(args.system) if args.system else "all five systems (systems/lab)"
    print(f"`{shlex.join(['python', *base[1:]])}` in {ROOT}; {selected}; lab lock {lock}")
    print(f"medians of {args.repeat} runs; load average at the end {load_average()}\n")
    lines = []
    for row in rows:
        if row.failed:
            lines.append([row.label, "0", "failed", row.failed, "", "", ""])
            continue
        first = row.median_extra("first_check")
        lines.append(
            [
                row.label,
                str(len(row.runs)),
                fmt(row.median("wall")),
                fmt(row.median("cpu")),
                fmt(first) if first == first else "-",
                fmt(row.median("peak_mb"), 0),
                row.counts() or "(collection only)",
            ]
        )
    header = ["command", "runs", "wall s", "CPU s", "to first check s", "peak MB", "outcomes"]
    print(table(header, lines, "lrrrrrl"))
    run = rows[0]
    if run.runs:
        print()
        medians = {
            "wall": run.median("wall"),
            "cpu": run.median("cpu"),
            "first_check": run.median_extra("first_check"),
            "peak_mb": run.median("peak_mb"),
        }
        goal_rows = []
        for name, goal in GOALS.items():
            value = medians[name]
            met = "yes" if value < goal else "**no**"
            shown = fmt(value, 0 if name == "peak_mb" else 2)
            goal_rows.append([GOAL_TEXT[name], shown, f"{goal:g}", met])
        print(table(["goal 1 (the run, median)", "median", "goal", "met"], goal_rows, "lrrl"))
    return 0 if all(not row.failed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
