"""A checklist run whose runner gets no CPU for a while: timing failures must blame the runner.

The runner (pytest) is stopped with SIGSTOP for `--pause` seconds, `--after` seconds into its
run, and continued: the extreme of a starved runner (a CI machine running other jobs, a paused
VM). The checks in flight then time out by the runner's clock while the lab's services answered
at once. Each of them must read "could not check: runner overloaded" (issue 20), never a service
failure. Exit 0 when no check is red for any other reason.

    set -a; . /var/lib/runbook-lab/lab.env; set +a
    flock /tmp/runbook-lab.lock .venv/bin/python bench/bench_starved_runner.py \\
        [--system S] [--after 2] [--pause 12]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", default="", help="one system (default: the five)")
    parser.add_argument("--after", type=float, default=2.0, help="seconds into the run")
    parser.add_argument("--pause", type=float, default=12.0, help="seconds without CPU")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="starved-") as folder:
        reports = Path(folder)
        chosen = ["--system", options.system] if options.system else []
        command = [sys.executable, "-m", "pytest", "-m", "daily", *chosen, "-q", f"--reports-dir={reports}"]
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        time.sleep(options.after)
        os.kill(process.pid, signal.SIGSTOP)
        time.sleep(options.pause)
        os.kill(process.pid, signal.SIGCONT)
        output, _ = process.communicate(timeout=600)
        wall = time.monotonic() - started
        written = reports / "latest" / "summary.json"
        if not written.is_file():
            print(output[-3000:])
            return 2
        checks = json.loads(written.read_text())["checks"]
    overloaded = [c for c in checks if "runner overloaded" in (c["message"] or "")]
    other_red = [c for c in checks if c["outcome"] in ("failed", "error") and c not in overloaded]
    print(
        f"pytest -m daily {' '.join(chosen)}, stopped {options.after:g} s into the run for "
        f"{options.pause:g} s: {wall:.1f} s, exit {process.returncode}"
    )
    print(f"outcomes: {dict(Counter(c['outcome'] for c in checks))}")
    print(f"runner overloaded: {len(overloaded)}")
    for check in overloaded:
        print(f"  {check['id']}: {check['message'][:400]}")
    print(f"red for another reason: {len(other_red)}")
    for check in other_red:
        print(f"  {check['id']}: {check['message'][:400]}")
    return 1 if other_red else 0


if __name__ == "__main__":
    sys.exit(main())
