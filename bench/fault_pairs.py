"""Lab faults in pairs: two faults of one system at once turn red exactly their two expected sets.

`make test` proves every fault alone. Here each fault of a system is paired with at least
`--per-fault` others, its neighbours in the system's fault table; both are
injected, the system's checklist runs as in selftests/lab_harness.py, and the red set must lie
between the union of the two expected sets and that union plus both `may_fail` sets. A fault
that hides another's symptoms says so in its table (`hides`, with the reason; `replaces` when
only injected after it): that other's expected set is then allowed, not required. A pair
whose second injection cannot happen on top of the first (a paused container cannot be
stopped the same way) is counted as "not combinable" with the reason, not as a failure.
Heal after every pair; the lab must be green again, which the next pair's run shows.

Long (a pair costs a checklist run and a heal, 15-40 s): nightly, not in `make test`.

    set -a; . /var/lib/runbook-lab/lab.env; set +a
    .venv/bin/python bench/fault_pairs.py [--system map-v12] [--per-fault 3] [--limit 60]
    .venv/bin/python bench/fault_pairs.py --pair map-v12:redis-down+worker-unsubscribed
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from itertools import islice, zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "selftests")]

from lab_harness import outcomes, run_checklist  # noqa: E402

from lab import api as lab  # noqa: E402
from lab.core import Fault  # noqa: E402

# The checklist each system's lab tests run (their class's `markers`).
MARKERS = {"hexenvpn-xray": "daily", "magic-master": "daily"}
DEFAULT_MARKERS = "daily or smoke or incident"


def pairs(faults: list[Fault], per_fault: int) -> list[tuple[Fault, Fault]]:
    """Each fault with its neighbours in the table (wrapping), at least `per_fault` of them
    (the next ceil(per_fault / 2) pair it with as many before it), every pair once."""
    chosen: dict[frozenset[str], tuple[Fault, Fault]] = {}
    for index, first in enumerate(faults):
        for step in range(1, min(-(-per_fault // 2), len(faults) - 1) + 1):
            second = faults[(index + step) % len(faults)]
            chosen.setdefault(frozenset({first.name, second.name}), (first, second))
    return list(chosen.values())


def run_pair(system: str, first: Fault, second: Fault, reports: Path) -> tuple[str, str]:
    """('ok' | 'not combinable' | 'WRONG', detail)."""
    try:
        lab.break_fault(system, first.name)
        try:
            lab.break_fault(system, second.name)
        except Exception as exc:  # the second fault cannot sit on top of the first
            return "not combinable", f"{type(exc).__name__}: {str(exc)[:200]}"
        _, records, _ = run_checklist(
            reports, systems=lab_file(system), marker=MARKERS.get(system, DEFAULT_MARKERS)
        )
    finally:
        lab.heal(system)
    red = outcomes(records, "failed") | outcomes(records, "error")
    expected: set[str] = set()
    hidden = []
    for this, other in ((first, second), (second, first)):
        # Declared in the fault table, with the reason: `hides` in any order, `replaces` when later.
        if this.name in other.hides:
            hidden.append(f"{other.name} hides {this.name}: {other.hides[this.name]}")
        elif other is second and this.name in other.replaces:
            hidden.append(f"{other.name} replaces {this.name}: {other.replaces[this.name]}")
        else:
            expected |= this.expected_failures
    allowed = first.expected_failures | second.expected_failures | first.may_fail | second.may_fail
    said = f" ({'; '.join(hidden)})" if hidden else ""
    if expected <= red <= allowed:
        return "ok", f"{len(red)} red{said}"
    return "WRONG", f"unexpected {sorted(red - allowed)}, missing {sorted(expected - red)}{said}"


def named_pair(text: str) -> tuple[str, Fault, Fault]:
    """'map-v12:redis-down+worker-unsubscribed' -> the system and its two faults."""
    system, _, names = text.partition(":")
    by_name = {fault.name: fault for fault in lab.faults(system)}
    first, _, second = names.partition("+")
    for name in (first, second):
        if name not in by_name:
            raise SystemExit(f"--pair {text}: {system} has no fault {name!r}")
    return system, by_name[first], by_name[second]


def lab_file(system: str) -> Path:
    return ROOT / "systems" / "lab" / f"{system}.yml"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--system", action="append", help="a lab system (default: every one)")
    parser.add_argument("--per-fault", type=int, default=3, help="partners per fault (default 3)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many pairs in all (0: no limit)")
    parser.add_argument(
        "--pair", action="append", default=[], help="only this pair, SYSTEM:FIRST+SECOND (again for more)"
    )
    parser.add_argument("--keep", type=Path, help="keep the reports of each WRONG pair in this folder")
    options = parser.parse_args()
    systems = options.system or lab.systems()
    by_system = [
        [(system, *pair) for pair in pairs(lab.faults(system), options.per_fault)] for system in systems
    ]
    # Round robin over the systems, so that --limit still covers each of them.
    plan = [step for turn in zip_longest(*by_system) for step in turn if step is not None]
    if options.pair:
        plan = [named_pair(text) for text in options.pair]
        systems = sorted({system for system, _, _ in plan})
    if options.limit:
        plan = list(islice(plan, options.limit))
    counts: dict[str, int] = {}
    started = time.monotonic()
    for system in systems:
        lab.heal(system)
    with tempfile.TemporaryDirectory(prefix="fault-pairs-") as folder:
        for number, (system, first, second) in enumerate(plan, 1):
            began = time.monotonic()
            verdict, detail = run_pair(system, first, second, Path(folder) / f"{number}")
            counts[verdict] = counts.get(verdict, 0) + 1
            took = time.monotonic() - began
            pair = f"{system}: {first.name} + {second.name}"
            print(f"{number:3}/{len(plan)} {pair}: {verdict} ({detail}) {took:.0f}s")
            if verdict == "WRONG" and options.keep:
                kept = options.keep / f"{number}-{system}-{first.name}+{second.name}"
                shutil.copytree(Path(folder) / f"{number}", kept, symlinks=True)
                print(f"    reports kept in {kept}")
            sys.stdout.flush()
    summary = ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items()))
    print(f"{len(plan)} pairs in {time.monotonic() - started:.0f}s: {summary}")
    return 1 if counts.get("WRONG") else 0


if __name__ == "__main__":
    sys.exit(main())
