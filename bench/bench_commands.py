"""Cost of one remote command through the host seam, per testinfra backend.

Prints milliseconds per `true` over local://, ssh:// (OpenSSH with ControlMaster, as
testinfra sets it up) and paramiko:// (one open session) against the lab's calendar
server. This is the number the persistent-session backend will have to beat.

    make lab-up && .venv/bin/python bench/bench_commands.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

from runbook.hosts import Target

LAB_SSH_CONFIG = "/var/lib/runbook-lab/ssh/config"
SPECS = {
    "local": "local://",
    "ssh": f"ssh://root@198.18.0.2?ssh_config={LAB_SSH_CONFIG}",
    "paramiko": f"paramiko://root@198.18.0.2?ssh_config={LAB_SSH_CONFIG}",
}


def measure(spec: str, runs: int) -> tuple[float, list[float]]:
    target = Target("bench", spec, command_timeout=30, connect_timeout=5)
    started = time.perf_counter()
    target.run("true")  # first contact: connection setup
    first = time.perf_counter() - started
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        target.run("true")
        samples.append(time.perf_counter() - started)
    return first, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"{'backend':<10} {'first ms':>9} {'median ms':>10} {'p90 ms':>8} {'runs':>5}")
    for name, spec in SPECS.items():
        first, samples = measure(spec, args.runs)
        samples.sort()
        p90 = samples[int(len(samples) * 0.9) - 1]
        print(
            f"{name:<10} {first * 1000:>9.1f} {statistics.median(samples) * 1000:>10.1f} "
            f"{p90 * 1000:>8.1f} {len(samples):>5}"
        )


if __name__ == "__main__":
    main()
