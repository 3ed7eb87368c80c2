"""The host-level checks of one system on 1 and on 30 lab hosts: ours, stock testinfra + xdist, ansible.

Builds its fixtures: a fleet of bare sshd hosts (`lab.fleet`, torn down at the end unless
--keep), a description with the same 6 checks per host (+ the suite's reachable-<host>),
the equivalent testinfra module and ansible inventory (bench/fleet_kit.py), and a venv
with ansible-core from PyPI in /var/tmp (kept between runs). Each runner is a whole
process, timed from start to exit, `--repeat` times (the median is shown):

- ours: `pytest` with ssh+persist://, checks run ahead per host (`--parallel-hosts 16`,
  the default); also one check per test (`--parallel-hosts 0`) and xdist by host
  (`-n 2 --dist-hosts`);
- testinfra: stock pytest-testinfra, ssh:// (its ControlPersist), `-n 2` and `-n 8`;
- ansible: `ansible fleet -m command -a CMD -f 30`, one call per check (7 calls).

Then the same through a latency-injecting proxy per host (`lab.latency_proxy`, +30 ms
per round trip by default), for 1 and 30 hosts.

    .venv/bin/python bench/bench_fleet.py [--hosts 30] [--repeat 3] [--delay-ms 30] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fleet_kit  # noqa: E402

from lab import fleet  # noqa: E402
from lab.fleet import PROXY_PORT, FleetHost  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
ANSIBLE_VENV = Path("/var/tmp/runbook-bench-ansible")
SUITE_PATHS = ["tests_health", "tests_config", "tests_backup"]


@dataclass(frozen=True)
class Runner:
    name: str
    argv: Callable[[Path, Path], list[list[str]]]  # (work folder, ControlPath folder) -> commands in turn


@dataclass
class Row:
    runner: str
    link: str
    hosts: int
    seconds: list[float]
    failed: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def ensure_ansible() -> Path:
    ansible = ANSIBLE_VENV / "bin" / "ansible"
    if not ansible.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True)
        subprocess.run([str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"], check=True)
    return ansible


def address(host: FleetHost, slow: bool) -> tuple[str, int]:
    return (host.proxy_addr, PROXY_PORT) if slow else (host.addr, 22)


class Fixtures:
    """Per (hosts, link): our description, the testinfra host list, the ansible inventory."""

    def __init__(self, folder: Path, members: list[FleetHost]) -> None:
        self.folder = folder
        self.members = members
        self.runbook = folder / "runbook.md"
        self.runbook.write_text("# fleet\n\n## 1. Daily Health Check\n")
        self.testinfra_module = fleet_kit.write_testinfra_module(folder / "testinfra")

    def place(self, hosts: int, slow: bool) -> Path:
        place = self.folder / f"{hosts}-{'slow' if slow else 'direct'}"
        members = self.members[:hosts]
        config = fleet.ssh_config_path()
        specs = {}
        for host in members:
            addr, port = address(host, slow)
            specs[host.label] = f"ssh+persist://root@{addr}:{port}?ssh_config={config}"
        fleet_kit.write_description(place / "systems", specs, self.runbook)
        fleet_kit.write_ansible_inventory(
            place, {host.label: address(host, slow) for host in members}, config
        )
        hosts_option = ",".join(f"ssh://root@{a}:{p}" for a, p in (address(h, slow) for h in members))
        (place / "testinfra-hosts").write_text(hosts_option)
        return place


def ours(*options: str) -> Callable[[Path, Path], list[list[str]]]:
    def argv(place: Path, control: Path) -> list[list[str]]:
        return [
            [
                PYTHON,
                "-m",
                "pytest",
                "-q",
                f"--systems={place / 'systems'}",
                f"--reports-dir={place / 'reports'}",
                *options,
                *SUITE_PATHS,
            ]
        ]

    return argv


def testinfra(workers: int, *, persist: bool = False) -> Callable[[Path, Path], list[list[str]]]:
    """Stock: ssh's ControlMaster=auto without a ControlPath, so one ssh connection a command."""
    extra = ["--ssh-extra-args=-o ControlPath={control}/%C"] if persist else []

    def argv(place: Path, control: Path) -> list[list[str]]:
        module = place.parent / "testinfra" / "test_fleet_testinfra.py"
        return [
            [
                PYTHON,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:runbook",
                "-p",
                "no:cacheprovider",
                f"--rootdir={module.parent}",
                "-c",
                "/dev/null",
                "-n",
                str(workers),
                f"--hosts={(place / 'testinfra-hosts').read_text()}",
                f"--ssh-config={fleet.ssh_config_path()}",
                *(option.format(control=control) for option in extra),
                str(module),
            ]
        ]

    return argv


def ansible(place: Path, control: Path) -> list[list[str]]:
    binary = str(ANSIBLE_VENV / "bin" / "ansible")
    inventory = str(place / "inventory.ini")
    return [
        [binary, "fleet", "-i", inventory, "-m", "command", "-a", command, "-f", "30", "-o"]
        for command in fleet_kit.COMMANDS.values()
    ]


RUNNERS = [
    Runner("ours (ssh+persist, 16 hosts at once)", ours()),
    Runner("ours, one check per test (--parallel-hosts 0)", ours("--parallel-hosts", "0")),
    Runner("ours, xdist -n 2 --dist-hosts", ours("-n", "2", "--dist-hosts")),
    Runner("testinfra ssh:// + xdist -n 2", testinfra(2)),
    Runner("testinfra ssh:// + xdist -n 8", testinfra(8)),
    Runner("testinfra ssh:// + ControlPath + xdist -n 8", testinfra(8, persist=True)),
    Runner("ansible -m command -f 30 (7 calls)", ansible),
]


def run_once(runner: Runner, place: Path) -> float:
    # A fresh ControlPath folder per run: ssh masters of an earlier run must not help this one.
    control = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))
    env = {
        **os.environ,
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    }
    started = time.perf_counter()
    try:
        for argv in runner.argv(place, control):
            proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}"[:300])
        return time.perf_counter() - started
    finally:
        for socket_path in control.iterdir():  # end this run's ssh masters, and only them
            stop = ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "any"]
            subprocess.run(stop, check=False, capture_output=True, timeout=10)
        shutil.rmtree(control, ignore_errors=True)


@contextmanager
def latency_proxy(members: list[FleetHost], delay_ms: float) -> Iterator[None]:
    routes = [f"{host.proxy_addr}:{PROXY_PORT}={host.addr}:22" for host in members]
    proxy = subprocess.Popen(
        [PYTHON, "-m", "lab.latency_proxy", "--delay-ms", str(delay_ms), *routes],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None
        proxy.stdout.readline()  # listening
        yield
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def command_round_trip(host: FleetHost, slow: bool) -> float:
    """Median seconds of `true` through our Target over an open connection."""
    from runbook.host.target import Target

    addr, port = address(host, slow)
    spec = f"ssh+persist://root@{addr}:{port}?ssh_config={fleet.ssh_config_path()}"
    target = Target("rtt", spec, command_timeout=30, connect_timeout=20)
    try:
        target.run("true")
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            target.run("true")
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)
    finally:
        target.connection.close()


def print_table(rows: list[Row], counts: tuple[int, int]) -> None:
    one, many = counts
    ours_median = {(row.link, row.hosts): row.median for row in rows if row.runner == RUNNERS[0].name}
    print(f"\n{'runner':<48} {'link':<7} {'hosts':>5} {'wall s':>7} {f'{many}/{one}':>6} {'x ours':>7}")
    by_key = {(row.runner, row.link, row.hosts): row for row in rows}
    for row in rows:
        if row.failed:
            print(f"{row.runner:<48} {row.link:<7} {row.hosts:>5} failed: {row.failed}")
            continue
        single = by_key.get((row.runner, row.link, one))
        scale = f"{row.median / single.median:6.2f}" if row.hosts == many and single else ""
        versus = row.median / ours_median.get((row.link, row.hosts), float("nan"))
        print(f"{row.runner:<48} {row.link:<7} {row.hosts:>5} {row.median:>7.2f} {scale:>6} {versus:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--delay-ms", type=float, default=30)
    parser.add_argument("--keep", action="store_true", help="leave the fleet up afterwards")
    parser.add_argument("--only", default="", help="run only runners whose name contains this")
    args = parser.parse_args()
    ensure_ansible()
    members = fleet.up(args.hosts)
    counts = (1, args.hosts)
    rows: list[Row] = []
    runners = [runner for runner in RUNNERS if args.only in runner.name]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
            fixtures = Fixtures(Path(folder), members)
            for link in ("direct", "slow"):
                slow = link == "slow"
                proxy = latency_proxy(members, args.delay_ms) if slow else _nothing()
                with proxy:
                    rtt = command_round_trip(members[0], slow)
                    print(f"{link}: one command through our Target, median {rtt * 1000:.1f} ms")
                    for hosts in counts:
                        place = fixtures.place(hosts, slow)
                        for runner in runners:
                            row = Row(runner.name, link, hosts, [])
                            for _ in range(args.repeat):
                                try:
                                    row.seconds.append(run_once(runner, place))
                                except Exception as exc:
                                    row.failed = f"{type(exc).__name__}: {exc}"[:200]
                                    break
                            rows.append(row)
                            print(f"  {runner.name} {hosts} hosts: {[round(s, 2) for s in row.seconds]}")
    finally:
        if not args.keep:
            fleet.down()
    print_table(rows, counts)
    print(f"\n{args.hosts}/1: wall for {args.hosts} hosts / wall for 1; x ours: / ours on the same link")
    checks = fleet_kit.CHECKS_PER_HOST
    print(f"slow: +{args.delay_ms:g} ms per round trip (lab.latency_proxy); {checks} checks a host")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


if __name__ == "__main__":
    main()
