"""CLI: python -m lab up|down|status|faults|break FAULT|heal [SYSTEM].

Exit codes: 0 ok, 1 the lab could not do it (or status found something down), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import time

from lab import api
from lab.core import LabError, UsageError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in [
        ("up", "start what is missing and wait until healthy"),
        ("status", "one line per component; exit 0 only if all is up"),
        ("faults", "list the injectable faults and the checks each should turn red"),
        ("heal", "remove every injected fault and return to green"),
    ]:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("system", nargs="?", help="default: all systems")
    p = sub.add_parser("down", help="stop everything; state stays unless --purge")
    p.add_argument("system", nargs="?", help="default: all systems")
    p.add_argument("--purge", action="store_true", help="also delete the state dir")
    p = sub.add_parser("break", help="inject FAULT and wait until it is observable")
    p.add_argument("fault")
    p.add_argument("system", nargs="?", help="default: the system that has FAULT")
    return parser


def _status(system: str | None) -> int:
    all_ok = True
    for name, comps in api.status(system).items():
        print(name)
        width = max(len(c.name) for c in comps)
        for c in comps:
            all_ok &= c.ok
            print(f"  [{' ok ' if c.ok else 'FAIL'}] {c.name:<{width}}  {c.detail}")
    return 0 if all_ok else 1


def _faults(system: str | None) -> int:
    for f in api.faults(system):
        print(f"{f.name:<17} {f.description}")
        print(f"{'':<17} expected to fail: {', '.join(sorted(f.expected_failures))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    try:
        if args.command == "up":
            api.up(args.system)
            rc = _status(args.system)
        elif args.command == "down":
            api.down(args.system, purge=args.purge)
            rc = 0
        elif args.command == "status":
            return _status(args.system)
        elif args.command == "faults":
            return _faults(args.system)
        elif args.command == "break":
            fault = api.break_fault(args.system, args.fault)
            print(f"{fault.system}: {fault.name} injected: {fault.description}")
            print(f"expected to fail: {', '.join(sorted(fault.expected_failures))}")
            rc = 0
        else:
            api.heal(args.system)
            rc = _status(args.system)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.command}: done in {time.monotonic() - started:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
