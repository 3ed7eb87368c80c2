"""Time and peak memory of a run handed a hostile description (issue 6).

Each case is a description that once crashed, hung or ate memory; each must stop
the run with exit 4 and one message naming the file, within seconds. The run is
the real one (`pytest --systems=FILE --collect-only`, in a subprocess), so the
numbers include pytest's own start-up (about 0.5 s and 55 MB here). A child is killed after
--timeout seconds and may use at most --max-gb of address space, so that a
regression cannot take the machine down.

    .venv/bin/python bench/bench_hostile_descriptions.py [--timeout 120] [--max-gb 8]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "selftests"))

from hostile import CASES  # noqa: E402  (the cases the selftests prove refused)


def _limit_memory(max_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply


def run_case(
    repo: Path, path: Path, folder: Path, timeout: float, max_bytes: int
) -> tuple[str, float, float, str]:
    """Exit code (or 'killed'), seconds, peak RSS in MB and the run's first message line."""
    output = folder / "output.txt"
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--systems={path}",
        f"--reports-dir={folder / 'reports'}",
        "--collect-only",
        "-q",
    ]
    with output.open("wb") as sink:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, cwd=repo, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_limit_memory(max_bytes)
        )
        status, usage = _wait(child.pid, started + timeout)
        seconds = time.perf_counter() - started
    code = str(os.waitstatus_to_exitcode(status)) if status is not None else "killed"
    text = output.read_text(errors="replace")
    message = next((line for line in text.splitlines() if line.strip()), "")
    if "Traceback" in text:
        message = "TRACEBACK: " + message
    return code, seconds, usage.ru_maxrss / 1024, message


def _wait(pid: int, deadline: float) -> tuple[int | None, resource.struct_rusage]:
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
            return None, usage
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeout", type=float, default=120, help="kill a run after this many seconds")
    parser.add_argument("--max-gb", type=float, default=8, help="address-space limit of a run")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to run (e.g. an old commit's)")
    parser.add_argument("cases", nargs="*", help="run only cases whose name contains one of these")
    args = parser.parse_args()
    max_bytes = int(args.max_gb * 1024**3)
    print(f"{'case':<26} {'exit':>6} {'seconds':>8} {'peak MB':>8}  message")
    for case in CASES:
        if args.cases and not any(part in case.name for part in args.cases):
            continue
        with tempfile.TemporaryDirectory(prefix="rb-hostile-") as tmp:
            folder = Path(tmp)
            path = case.build(folder)
            code, seconds, peak_mb, message = run_case(args.repo, path, folder, args.timeout, max_bytes)
        message = message.replace(str(folder), "TMP")
        print(f"{case.name:<26} {code:>6} {seconds:>8.2f} {peak_mb:>8.0f}  {message[:110]}")


if __name__ == "__main__":
    main()
