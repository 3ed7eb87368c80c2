"""Cost of one remote command per backend, side by side in one run: ssh+persist:// against the rest.

Every row sends `true` to the same host, one command after another. Two APIs, each with
its own "ours" row to compare against:
- testinfra: `testinfra.get_host(spec).run("true")`, stock `ssh://` and `paramiko://`
  against `ssh+persist://` (our backend, registered into testinfra);
- Target: the suite's host seam (runbook.host.target), which also wraps each command in its
  host-side deadline, in-band exit code and orphan cleanup (`timeout` + `sh`), over
  ssh://, paramiko://, ssh+persist:// and local://.

The host is the lab's calendar server when it answers, else a loopback sshd that this
script starts (its keys in a temporary folder); the output says which.

    .venv/bin/python bench/bench_commands.py [--runs 50] [--where auto|lab|loopback]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import testinfra

from runbook.host.target import Target
from runbook.host.transports import TRANSPORTS  # noqa: F401 - registers ssh+persist into testinfra

ROOT = Path(__file__).resolve().parents[1]
LAB_HOST = "198.18.0.2"
LAB_SSH_CONFIG = "/var/lib/runbook-lab/ssh/config"
OURS = "ssh+persist"


@dataclass(frozen=True)
class Row:
    api: str
    scheme: str
    first: float
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, round(len(ordered) * 0.9) - 1)]


def timed(command: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    """The first call (connection setup included) and `runs` calls after it, in seconds."""
    started = time.perf_counter()
    command()
    first = time.perf_counter() - started
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        command()
        samples.append(time.perf_counter() - started)
    return first, samples


def via_testinfra(spec: str, runs: int) -> tuple[float, list[float]]:
    host = testinfra.get_host(spec)
    try:
        return timed(lambda: host.run("true"), runs)
    finally:
        closing = getattr(getattr(host.backend, "transport", None), "close", None)
        if closing is not None:
            closing()


def via_target(spec: str, runs: int) -> tuple[float, list[float]]:
    target = Target("bench", spec, command_timeout=30, connect_timeout=5)
    try:
        return timed(lambda: target.run("true"), runs)
    finally:
        target.connection.close()


def lab_answers() -> bool:
    if not os.path.isfile(LAB_SSH_CONFIG):
        return False
    try:
        with socket.create_connection((LAB_HOST, 22), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def host_under_test(where: str) -> Iterator[tuple[str, Callable[[str], str]]]:
    """(description, spec for a scheme) of the lab server or of a loopback sshd started here."""
    if where == "lab" or (where == "auto" and lab_answers()):
        yield (
            f"the lab's calendar server {LAB_HOST}",
            lambda scheme: f"{scheme}://root@{LAB_HOST}?ssh_config={LAB_SSH_CONFIG}",
        )
        return
    sys.path.insert(0, str(ROOT))
    from selftests.sshd import loopback_sshd

    with tempfile.TemporaryDirectory() as folder, loopback_sshd(Path(folder)) as server:
        yield f"a loopback sshd started by this script (127.0.0.1:{server.port})", server.spec


def print_table(rows: list[Row], failures: dict[str, str]) -> None:
    ours = {row.api: row.median for row in rows if row.scheme == OURS}
    header = ("api", "backend", "first ms", "median ms", "p90 ms", "x ours", "runs")
    print("{:<10} {:<14} {:>9} {:>10} {:>8} {:>7} {:>5}".format(*header))
    for row in rows:
        ratio = row.median / ours[row.api] if row.api in ours else float("nan")
        print(
            f"{row.api:<10} {row.scheme + '://':<14} {row.first * 1000:>9.1f} {row.median * 1000:>10.2f} "
            f"{row.p90 * 1000:>8.2f} {ratio:>7.1f} {len(row.samples):>5}"
        )
    for name, error in failures.items():
        print(f"{name:<25} failed: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--where", choices=("auto", "lab", "loopback"), default="auto")
    args = parser.parse_args()
    # Stock testinfra paramiko:// accepts unknown host keys with a warning per connection.
    warnings.filterwarnings("ignore", message="Unknown .* host key")
    plan = [("testinfra", scheme, via_testinfra) for scheme in ("ssh", "paramiko", OURS)]
    plan += [("Target", scheme, via_target) for scheme in ("ssh", "paramiko", OURS, "local")]
    rows: list[Row] = []
    failures: dict[str, str] = {}
    with host_under_test(args.where) as (description, spec):
        print(f"host: {description}; {args.runs} runs of `true` per backend after the first\n")
        for api, scheme, measure in plan:
            try:  # a host that goes away mid-run costs its rows, not the table
                host_spec = "local://" if scheme == "local" else spec(scheme)
                rows.append(Row(api, scheme, *measure(host_spec, args.runs)))
            except Exception as exc:
                failures[f"{api} {scheme}://"] = f"{type(exc).__name__}: {exc}"[:200]
    print_table(rows, failures)
    print("\nx ours: median / the median of ssh+persist:// through the same API")


if __name__ == "__main__":
    main()
