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
        command = sub.add_parser(name, help=help_text)
        command.add_argument("system", nargs="?", help="default: all systems")
    down = sub.add_parser("down", help="stop everything; state stays unless --purge")
    down.add_argument("system", nargs="?", help="default: all systems")
    down.add_argument("--purge", action="store_true", help="also delete the state dir")
    inject = sub.add_parser("break", help="inject FAULT and wait until it is observable")
    inject.add_argument("fault")
    inject.add_argument("system", nargs="?", help="default: the system that has FAULT")
    return parser


def _status(system: str | None) -> int:
    all_ok = True
    for name, lines in api.status(system).items():
        print(name)
        width = max(len(line.name) for line in lines)
        for line in lines:
            all_ok &= line.ok
            print(f"  [{' ok ' if line.ok else 'FAIL'}] {line.name:<{width}}  {line.detail}")
    return 0 if all_ok else 1


def _faults(system: str | None) -> int:
    for fault in api.faults(system):
        print(f"{fault.name:<17} {fault.description}")
        print(f"{'':<17} expected to fail: {', '.join(sorted(fault.expected_failures))}")
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
