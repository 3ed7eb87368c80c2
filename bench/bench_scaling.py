"""Issue 21 goal 3: how a run grows with the number of checks and with the number of hosts.

    cd CHECKOUT; flock /tmp/runbook-lab.lock env PYTHONPATH=$PWD .venv/bin/python bench/bench_scaling.py \\
        [--sizes 40,169,1000,5000] [--hosts 1,30,300] [--checks-per-host 15] [--repeat 3] \\
        [--axis checks,hosts]

Each row is `python -m pytest -m daily -q --systems=DIR --reports-dir=...` on a synthetic
description (bench_report_size.write_systems: at most 1,000 checks a description file), one whole
process per run, medians of --repeat runs. The checks are cheap and the same everywhere, in
turn: `true`, `cat /etc/hostname`, /etc/passwd a file owned by root, /root a directory,
`test -r /proc/loadavg`.

(a) checks axis: N checks spread round robin over the lab's hosts, reached as the lab reaches
them (the ssh+persist:// specs of systems/lab/*.yml, one connection per distinct spec); the lab
lock is held. A description names every host, so the suite adds its reachable-<host> check per
description and host: tests = N + hosts x descriptions.

(b) hosts axis: H hosts x C tests each (C - 1 described checks plus the suite's reachable-<host>),
H up to 300: loopback sshd processes, 15 ports each, every port a host
(`ssh+persist://root@127.0.0.1:PORT?ssh_config=...`, bench/loopback_fleet.py), at most 60 hosts a
description. The sshd side runs on the same 2 cores as the runner.

Columns:
- wall s: process start to exit; CPU s: user + sys of pytest and what it waited for (os.wait4);
- peak MB: the pytest process's peak RSS (ru_maxrss); tree MB (hosts axis): the largest sum of
  VmRSS over pytest and all its descendants, sampled every 20 ms from /proc (ssh+persist:// is
  paramiko in the process: there are no ssh children, so this is the runner; the sshd servers
  are not counted);
- CPU ms / test: CPU / tests run; marginal: (CPU - CPU of the smallest size) / (tests - its tests),
  the cost of one more check without start-up and collection;
- outcomes: from summary.json (every check should pass).
Also printed: the key-exchange floor of one host of (b), a new connection each time: OpenSSH
`ssh -o ControlMaster=no HOST true` as a whole process, with its default key exchange (OpenSSH 9's
post-quantum sntrup761x25519, most of its CPU) and with curve25519-sha256 (what paramiko agrees
on), and the suite's own connection (paramiko connect, auth, first shell, `true` through a fresh
Target) measured in this process. The sshd side's CPU is in none of them.
Goals: under 5 ms CPU a check at 1,000 checks; 300 hosts x 15 checks under 15 s wall and 1 GB.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from bench_report_size import write_systems
from loopback_fleet import HOST, loopback_fleet
from measure_kit import (
    PYTHON,
    ROOT,
    Measured,
    Row,
    fmt,
    hold_lab_lock,
    load_average,
    outcomes_of,
    pytest_tail,
    run_measured,
    suite_env,
    table,
)

COMMON = {
    "severity": "P3",
    "section": "1. Daily Health Check",
    "remedy": "see the runbook",
    "markers": ["daily"],
}
HOSTS_PER_SYSTEM = 60
CURVE = "curve25519-sha256"


def cheap_check(index: int, host: str) -> tuple[str, dict[str, object]]:
    """(kind, check) number `index` of the rotation, on `host`."""
    ident = {"id": f"c{index:05d}", "host": host, **COMMON}
    rotation: list[tuple[str, dict[str, object]]] = [
        ("commands", {"title": "true exits 0", "run": "true"}),
        ("commands", {"title": "/etc/hostname is readable", "run": "cat /etc/hostname"}),
        ("files", {"title": "/etc/passwd is root's file", "path": "/etc/passwd", "owner": "root"}),
        ("files", {"title": "/root is a directory", "path": "/root", "type": "directory"}),
        ("commands", {"title": "/proc/loadavg is readable", "run": "test -r /proc/loadavg"}),
    ]
    kind, fields = rotation[index % len(rotation)]
    return kind, {**ident, **fields}


def describer(specs: dict[str, str], host_of: Callable[[int], str]) -> Callable[[str, int, int], str]:
    """A description writer for write_systems: checks first..first+count-1, each on host_of(index)."""

    def describe(system: str, first: int, count: int) -> str:
        checks: dict[str, list[dict[str, object]]] = {}
        used: dict[str, str] = {}
        for index in range(first, first + count):
            host = host_of(index)
            used[host] = specs[host]
            kind, check = cheap_check(index, host)
            checks.setdefault(kind, []).append(check)
        data = {"system": system, "runbook": "runbook.md", "hosts": used, "connect_timeout": 20}
        return yaml.safe_dump({**data, "checks": checks}, sort_keys=False)

    return describe


def lab_specs() -> dict[str, str]:
    """The lab's distinct host specs (systems/lab/*.yml), named system-host."""
    specs: dict[str, str] = {}
    for overlay in sorted((ROOT / "systems" / "lab").glob("*.yml")):
        data = yaml.safe_load(overlay.read_text(encoding="utf-8"))
        for name, spec in (data.get("hosts") or {}).items():
            if spec not in specs.values():
                specs[f"{overlay.stem}-{name}"] = spec
    return specs


def measure(row: Row, systems: Path, repeat: int, tree: bool) -> None:
    reports = systems.parent / "reports"
    argv = [PYTHON, "-m", "pytest", "-m", "daily", "-q", f"--systems={systems}", f"--reports-dir={reports}"]
    for number in range(repeat):
        run = run_measured(argv, env=suite_env(), tree=tree)
        if run.returncode not in (0, 1):
            row.failed = f"exit {run.returncode}: {pytest_tail(run.output)}"
            return
        outcomes = outcomes_of(reports)
        row.runs.append(run)
        row.outcomes.append(outcomes)
        row.extra.append({"tests": len(outcomes)})
        tree_text = f", tree {run.tree_mb:.0f} MB" if run.tree_mb is not None else ""
        print(
            f"  {row.label} run {number + 1}: {len(outcomes)} tests, wall {run.wall:.2f} s, "
            f"CPU {run.cpu:.2f} s, peak {run.peak_mb:.0f} MB{tree_text}",
            file=sys.stderr,
            flush=True,
        )


def per_test(rows: list[Row]) -> list[tuple[float, float]]:
    """(CPU ms per test, marginal CPU ms per test against the first row) for each row."""
    if not rows or not rows[0].runs:
        return [(float("nan"), float("nan"))] * len(rows)
    base_cpu, base_tests = rows[0].median("cpu"), rows[0].median_extra("tests")
    found = []
    for row in rows:
        cpu, tests = row.median("cpu"), row.median_extra("tests")
        marginal = (cpu - base_cpu) / (tests - base_tests) * 1000 if tests > base_tests else float("nan")
        found.append((cpu / tests * 1000 if tests else float("nan"), marginal))
    return found


def cells(rows: list[Row], *, tree: bool) -> list[list[str]]:
    """One table line per row: tests, wall, CPU, peak (and the sampled tree), cost a test, outcomes."""
    lines = []
    for row, (cost, marginal) in zip(rows, per_test(rows), strict=True):
        memory = [fmt(row.median("peak_mb"), 0)] + ([fmt(row.median("tree_mb"), 0)] if tree else [])
        if row.failed:
            lines.append([row.label, "failed", row.failed, *[""] * (len(memory) + 5)])
            continue
        lines.append(
            [
                row.label,
                fmt(row.median_extra("tests"), 0),
                fmt(row.median("wall")),
                fmt(row.median("cpu")),
                *memory,
                fmt(cost),
                fmt(marginal),
                row.counts(),
            ]
        )
    return lines


def checks_axis(sizes: list[int], repeat: int, folder: Path) -> list[str]:
    specs = lab_specs()
    names = list(specs)
    rows = []
    for size in sizes:
        place = folder / f"checks-{size}"
        place.mkdir()
        systems = write_systems(
            place, size, describer(specs, lambda i: names[i % len(names)]), prefix="scale"
        )
        row = Row(f"{size:,}")
        measure(row, systems, repeat, tree=False)
        rows.append(row)
    lines = cells(rows, tree=False)
    header = ["checks", "tests", "wall s", "CPU s", "peak MB", "CPU ms / test", "marginal ms", "outcomes"]
    out = [f"(a) checks axis: {len(specs)} lab hosts over ssh+persist:// ({', '.join(names)})", ""]
    out.append(table(header, lines, "rrrrrrrl"))
    for row, (cost, marginal) in zip(rows, per_test(rows), strict=True):
        if row.label == "1,000" and row.runs:
            met = "met" if cost < 5 else "**not met**"
            out.append(
                f"\ngoal 3a, under 5 ms CPU a check at 1,000 checks: {cost:.2f} ms a test all in "
                f"({met}); {fmt(marginal)} ms marginal"
            )
    return out


def openssh_floor(config: Path, port: int, kex: str = "", times: int = 5) -> tuple[float, float]:
    """Median wall and CPU (s) of a whole `ssh HOST true` with a new connection."""
    argv = ["ssh", "-F", str(config), "-o", "ControlMaster=no", "-p", str(port)]
    argv += [*(["-o", f"KexAlgorithms={kex}"] if kex else []), HOST, "true"]
    runs: list[Measured] = [run_measured(argv) for _ in range(times)]
    if any(run.returncode != 0 for run in runs):
        raise RuntimeError(f"ssh to port {port} failed: {runs[-1].output.strip()[:300]}")
    return statistics.median(run.wall for run in runs), statistics.median(run.cpu for run in runs)


class _KexSeen(logging.Handler):
    """Keeps paramiko's "Kex: NAME" debug line: the key exchange it agreed on."""

    name_seen = "?"

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Kex: "):
            self.name_seen = message[5:]


def suite_floor(spec: str, times: int = 5) -> tuple[float, float, str]:
    """Median wall and CPU (s, this process) of a new ssh+persist:// connection and its first `true`,
    and the key exchange paramiko agreed on."""
    from runbook.host.target import Target

    seen, logger = _KexSeen(), logging.getLogger("paramiko.transport")
    samples = []
    for number in range(times + 1):
        # The first one, not counted, imports paramiko and the transport and names the key exchange.
        if number == 0:
            logger.addHandler(seen)
            logger.setLevel(logging.DEBUG)
        target = Target("floor", spec, command_timeout=30, connect_timeout=20)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            target.run("true")
            if number:
                samples.append((time.perf_counter() - wall, time.process_time() - cpu))
        finally:
            target.connection.close()
            logger.removeHandler(seen)
            logger.setLevel(logging.NOTSET)
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples), seen.name_seen


def hosts_axis(counts: list[int], per_host: int, repeat: int, folder: Path) -> list[str]:
    rows = []
    with loopback_fleet(max(counts), folder / "loopback") as fleet:
        specs = fleet.specs(max(counts))
        names = list(specs)
        ssh_wall, ssh_cpu = openssh_floor(fleet.ssh_config, fleet.ports[0])
        ssh_c_wall, ssh_c_cpu = openssh_floor(fleet.ssh_config, fleet.ports[0], CURVE)
        ours_wall, ours_cpu, ours_kex = suite_floor(specs[names[0]])
        described = per_host - 1  # the suite adds reachable-<host>
        for count in counts:
            place = folder / f"hosts-{count}"
            place.mkdir()
            describe = describer(specs, lambda i: names[i // described])
            systems = write_systems(place, count * described, describe, HOSTS_PER_SYSTEM * described, "fleet")
            row = Row(str(count))
            measure(row, systems, repeat, tree=True)
            rows.append(row)
    lines = cells(rows, tree=True)
    header = ["hosts", "tests", "wall s", "CPU s", "peak MB", "tree MB", "CPU ms / test", "marginal ms"]
    sshds = -(-max(counts) // 15)
    out = [
        f"(b) hosts axis: {per_host} tests a host ({per_host - 1} checks + reachable-<host>), loopback "
        f"sshd ({sshds} processes, 15 ports each), ssh+persist://",
        "",
        "key-exchange floor, one host, a new connection each time (median of 5; sshd's side not counted):",
        f"- OpenSSH `ssh -o ControlMaster=no -p PORT {HOST} true`, default key exchange (OpenSSH 9: "
        f"sntrup761x25519): {ms(ssh_wall)} wall, {ms(ssh_cpu)} CPU of the ssh process",
        f"- the same with `-o KexAlgorithms={CURVE}`: {ms(ssh_c_wall)} wall, {ms(ssh_c_cpu)} CPU",
        f"- ours, ssh+persist:// (paramiko, {ours_kex}: connect, auth, shell, `true` through a new Target): "
        f"{ms(ours_wall)} wall, {ms(ours_cpu)} CPU of the runner",
        "",
        table([*header, "outcomes"], lines, "rrrrrrrrl"),
    ]
    big = next((row for row in rows if row.label == "300"), None)
    if big and big.runs and per_host == 15:
        # the sampled tree can miss a short peak that ru_maxrss of the runner alone saw
        wall, memory = big.median("wall"), max(big.median("tree_mb"), big.median("peak_mb"))
        met = "met" if wall < 15 and memory < 1024 else "**not met**"
        out.append(
            f"\ngoal 3b, 300 hosts x 15 checks under 15 s wall and 1 GB: {wall:.2f} s, "
            f"{memory:.0f} MB (the runner's tree, sampled, or its own peak if larger) ({met})"
        )
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="40,169,1000,5000", help="checks axis: numbers of checks")
    parser.add_argument("--hosts", default="1,30,300", help="hosts axis: numbers of hosts")
    parser.add_argument("--checks-per-host", type=int, default=15, help="hosts axis, reachable included")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--axis", default="checks,hosts", help="checks, hosts or both")
    args = parser.parse_args()
    axes = set(args.axis.split(","))
    lock = hold_lab_lock() if "checks" in axes else "not needed (loopback hosts only)"
    print(
        f"`python -m pytest -m daily -q --systems=DIR` in {ROOT}; lab lock {lock}; medians of {args.repeat}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as name:
        folder = Path(name)
        if "checks" in axes:
            sizes = [int(text) for text in args.sizes.split(",")]
            print("\n" + "\n".join(checks_axis(sizes, args.repeat, folder)), flush=True)
        if "hosts" in axes:
            counts = [int(text) for text in args.hosts.split(",")]
            print("\n" + "\n".join(hosts_axis(counts, args.checks_per_host, args.repeat, folder)), flush=True)
    print(f"\nload average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
