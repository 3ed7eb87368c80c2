"""Issue 21 goal 2: the calendar daily over ssh+persist:// (ours) against stock testinfra ssh://.

    cd CHECKOUT; flock /tmp/runbook-lab.lock env PYTHONPATH=$PWD \\
        .venv/bin/python bench/bench_vs_ssh.py [--repeat 5] [--system ai-calendar-assistant] [-k EXPR ...]

Both runners check the same description: a temporary overlay that `extends:` the lab overlay
(systems/lab/SYSTEM.yml, by its absolute path, so its own `extends:` and the base's relative
runbook and coverage paths resolve as in the checkout) and only rewrites each host's scheme:

- ours: `ssh+persist://` (the lab's own specs): one paramiko connection and open shells per host;
- stock testinfra ssh://: the same hosts as `ssh://`, and bench/plugin_stock_ssh.py (`-p`) maps
  the scheme to the suite's testinfra fallback, so every command is testinfra.get_host(spec).run:
  testinfra's SshBackend, one `ssh` process (a new connection: ControlMaster=auto without a
  ControlPath) per command. The plugin counts those commands in both rows (0 for ours).

Each run is `python -m pytest -m daily [-k EXPR] -q --systems=OVERLAY` as one whole process, a
pair of rows per -k: by default the whole daily, then without the checks that stream a file
(`-k 'not backup-integrity'`: the suite's testinfra fallback cannot stream, and the failure marks
the host unreachable, so stock skips the rest of the host's checks and does less work). All rows
take turns, one run each per round, so the machine's load hits them alike. Medians:

- wall s: process start to exit; CPU s: user + sys of pytest and the processes it waited for (the
  `ssh` processes of stock testinfra included; os.wait4); peak MB: largest single process (ru_maxrss);
- testinfra ssh commands: SshBackend.run_ssh calls (`ssh` processes started), median per run;
- outcomes: from each run's summary.json; checks whose outcome differs between the runners are
  listed below the table;
- stock / ours: the ratio of the medians (goal 2: ours at least 5x faster, whole-process wall).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import yaml
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

RUNNERS = {"ours (ssh+persist://)": "ssh+persist://", "stock testinfra ssh://": "ssh://"}
# Checks that stream a file (runbook.host.target.open_stream): the suite's testinfra fallback has
# no stream, so under stock ssh:// such a check fails and takes its host down with it (every later
# check of the host is skipped as unreachable). The second pair of rows leaves them out.
LIKE_FOR_LIKE = "not backup-integrity"


def write_overlay(folder: Path, system: str, scheme: str) -> tuple[Path, dict[str, str]]:
    """An overlay of the lab overlay with every host's ssh+persist:// made `scheme`."""
    lab_overlay = (ROOT / "systems" / "lab" / f"{system}.yml").resolve()
    hosts = yaml.safe_load(lab_overlay.read_text(encoding="utf-8"))["hosts"]
    rewritten = {name: scheme + spec.split("://", 1)[1] for name, spec in hosts.items()}
    folder.mkdir(parents=True)
    path = folder / f"{system}.yml"
    path.write_text(yaml.safe_dump({"extends": str(lab_overlay), "hosts": rewritten}, sort_keys=False))
    return path, rewritten


def compare(pair: list[Row]) -> list[str]:
    """The ratio line and the checks whose outcome differed between runs made side by side."""
    ours, stock = pair
    if not (ours.runs and stock.runs):
        return []
    wall = stock.median("wall") / ours.median("wall")
    cpu = stock.median("cpu") / ours.median("cpu")
    met = "met" if wall >= 5 else "**not met**"
    lines = [f"stock / ours: wall **{wall:.1f}x**, CPU {cpu:.1f}x (goal 2, at least 5x wall: {met})"]
    differ: dict[str, set[str]] = {}
    for mine, theirs in zip(ours.outcomes, stock.outcomes, strict=False):
        for check in sorted(set(mine) | set(theirs)):
            if mine.get(check) != theirs.get(check):
                differ.setdefault(check, set()).add(f"{mine.get(check)} / {theirs.get(check)}")
    if not differ:
        return [*lines, "every check had the same outcome both ways in every pair of runs"]
    lines.append(
        f"**{len(differ)} checks differ** (ours / stock; a lab change between two runs shows here too), "
        "so the ratio compares unequal work:"
    )
    return lines + [f"- {check}: {', '.join(sorted(pairs))}" for check, pairs in differ.items()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--system", default="ai-calendar-assistant")
    parser.add_argument("-m", dest="markers", default="daily", help="pytest -m (default: %(default)s)")
    parser.add_argument(
        "-k",
        dest="keywords",
        action="append",
        help="pytest -k, a pair of rows each (repeatable; default: the whole daily, then "
        f"-k {LIKE_FOR_LIKE!r})",
    )
    args = parser.parse_args()
    keywords = args.keywords or ["", LIKE_FOR_LIKE]
    lock = hold_lab_lock()
    base = [PYTHON, "-m", "pytest", "-m", args.markers, "-q", "-p", "plugin_stock_ssh"]
    pairs: dict[str, list[Row]] = {}
    ssh_commands: dict[str, list[int]] = {}
    specs: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-vs-ssh-") as name:
        folder = Path(name)
        plans = []
        overlays = {}
        for index, (runner, scheme) in enumerate(RUNNERS.items()):
            overlays[runner], specs[runner] = write_overlay(folder / f"systems-{index}", args.system, scheme)
        for number, keyword in enumerate(keywords):
            pairs[keyword] = []
            for index, (runner, scheme) in enumerate(RUNNERS.items()):
                row = Row(f"{runner}, -k {keyword!r}" if keyword else f"{runner}, whole {args.markers}")
                pairs[keyword].append(row)
                env = suite_env(lab_env())
                env["BENCH_STOCK_SSH"] = "1" if scheme == "ssh://" else "0"
                env["BENCH_SSH_LOG"] = str(folder / f"ssh-{number}-{index}.json")
                reports = folder / f"reports-{number}-{index}"
                argv = [*base, *(["-k", keyword] if keyword else []), f"--systems={overlays[runner]}"]
                plans.append((row, [*argv, f"--reports-dir={reports}"], env, reports))
                ssh_commands[row.label] = []
        for number in range(args.repeat):
            for row, argv, env, reports in plans:
                if row.failed:
                    continue
                run = run_measured(argv, env=env)
                if run.returncode not in (0, 1):
                    row.failed = f"exit {run.returncode}: {pytest_tail(run.output)}"
                    continue
                log = json.loads(Path(env["BENCH_SSH_LOG"]).read_text())
                ssh_commands[row.label].append(log["testinfra_ssh_commands"])
                row.runs.append(run)
                row.outcomes.append(outcomes_of(reports))
                print(
                    f"  {row.label} run {number + 1}: wall {run.wall:.2f} s, CPU {run.cpu:.2f} s, "
                    f"peak {run.peak_mb:.0f} MB, ssh:// mapped to {log['ssh_transport']}, "
                    f"testinfra ssh commands {log['testinfra_ssh_commands']}",
                    file=sys.stderr,
                    flush=True,
                )

    shown = shlex.join(["python", *base[1:]]) + " [-k EXPR] --systems=OVERLAY"
    print(f"`{shown}` in {ROOT}; lab lock {lock}")
    for runner, hosts in specs.items():
        print(f"- {runner}: " + ", ".join(f"{host}={spec}" for host, spec in hosts.items()))
    print(f"\nmedians of {args.repeat} runs each, alternating; load average at the end {load_average()}\n")
    lines = []
    for row in (row for pair in pairs.values() for row in pair):
        if row.failed:
            lines.append([row.label, str(len(row.runs)), "failed", row.failed, "", "", ""])
            continue
        counted = sorted(ssh_commands[row.label])
        lines.append(
            [
                row.label,
                str(len(row.runs)),
                fmt(row.median("wall")),
                fmt(row.median("cpu")),
                fmt(row.median("peak_mb"), 0),
                str(counted[len(counted) // 2]) if counted else "0",
                row.counts(),
            ]
        )
    header = ["runner", "runs", "wall s", "CPU s", "peak MB", "testinfra ssh commands", "outcomes"]
    print(table(header, lines, "lrrrrrl"))
    for keyword, pair in pairs.items():
        print(f"\n{'-k ' + repr(keyword) if keyword else 'whole ' + args.markers}:")
        print("\n".join(compare(pair)))
    return 0 if all(not row.failed for pair in pairs.values() for row in pair) else 1


if __name__ == "__main__":
    sys.exit(main())
