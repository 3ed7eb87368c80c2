"""`python -m runbook`: setting a project up, writing descriptions, the run history, incident bundles.

    python -m runbook init [--system NAME --host SPEC] [DIR]
    python -m runbook validate [--systems DIR] [--json]
    python -m runbook list [-m EXPR] [--system S] [--systems DIR] [--json]
    python -m runbook schema [--markdown]
    python -m runbook history [--system S] [--check ID] [--markers EXPR] [--dsn DSN] [--reports-dir DIR]
    python -m runbook incident list|close [RUN_FOLDER] [--reports-dir DIR]
    python -m runbook coverage [--systems DIR] [--system S] [--json]

`history` prints, per check, its timeline as stretches of the same state: when it turned
red, how long and for how many runs it stayed so, and how often it changed state lately
(flapping). The store is `--dsn` (or $RUNBOOK_HISTORY_DSN), else history.sqlite in the
reports folder: --reports-dir, else the project's pytest settings' runbook_reports_dir (found
as pytest finds them, relative to their folder), else ./reports. `incident` reads the same.
`incident close` marks a run folder's bundle closed, so retention may delete its runs.
`coverage` prints, per system, how many statements of its runbook are checked, partly checked
or not checked (and why), then every quote that no longer stands at its runbook lines.
init, validate, list and schema live in runbook/cli/ (one module each).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from runbook.cli import init, listing, validate
from runbook.cli import schema as schema_command
from runbook.cli.settings import reports_folder
from runbook.describe.coverage import InventoryError, description_files, system_coverage
from runbook.describe.loader import DescriptionError
from runbook.readers import bundle
from runbook.readers.changes import FlapPolicy, parse_time, short_time, span, state
from runbook.readers.history import DEFAULT_NAME, HistoryError, HistoryStore, Result, RunInfo, display
from runbook.readers.retention import run_folders
from runbook.report.options import HISTORY_ENV
from runbook.report.summary import iso
from runbook.secrets import SECRETS

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 4
COMMANDS = {"init": init, "validate": validate, "list": listing, "schema": schema_command}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add(commands)
    history = commands.add_parser("history", help="a check's timeline: red since when, how long, how often")
    history.add_argument("--system", help="only this system's checks")
    history.add_argument("--check", help="check id or system:check-id; * and ? match anything")
    history.add_argument("--markers", help="only runs with this marker expression (e.g. daily)")
    history.add_argument("--dsn", help=f"postgresql://... or a SQLite file (default ${HISTORY_ENV})")
    history.add_argument(
        "--reports-dir", help="where history.sqlite is (default: the settings' runbook_reports_dir)"
    )
    history.add_argument("--runs", type=int, default=200, help="look at the last N results (default 200)")
    incident = commands.add_parser("incident", help="open incident bundles, and closing them")
    incident.add_argument("action", choices=("list", "close"))
    incident.add_argument("folder", nargs="?", help="the run folder whose bundle to close")
    incident.add_argument("--reports-dir", help="default: the settings' runbook_reports_dir, else reports")
    cover = commands.add_parser("coverage", help="how much of each runbook is checked, and drift")
    cover.add_argument("--systems", default="systems", help="descriptions folder or file (default systems)")
    cover.add_argument("--system", action="append", default=[], help="only this system (repeatable)")
    cover.add_argument("--json", action="store_true", help="the numbers as JSON")
    args = parser.parse_args(argv)
    SECRETS.add_from_environment()
    if args.command in COMMANDS:
        return int(COMMANDS[args.command].run(args))
    if args.command == "history":
        return _history(args)
    if args.command == "coverage":
        return _coverage(args)
    return _incident(args)


def _coverage(args: argparse.Namespace) -> int:
    location = Path(args.systems)
    if not location.exists():
        print(f"{location}: no such file or folder of descriptions", file=sys.stderr)
        return EXIT_USAGE
    results = []
    try:
        for path in description_files(location):
            result = system_coverage(path)
            if not args.system or result.system in args.system:
                results.append(result)
    except (DescriptionError, InventoryError, OSError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(
            json.dumps(
                [r.coverage.to_json() if r.coverage else {"system": r.system} for r in results], indent=2
            )
        )
    else:
        for result in results:
            print(result.coverage.line() if result.coverage else f"{result.system}: no statement inventory")
    drift = [problem for result in results for problem in result.problems]
    for problem in drift:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_NOTHING if drift else EXIT_OK


def _history(args: argparse.Namespace) -> int:
    reports = reports_folder(args.reports_dir, Path.cwd())
    location = args.dsn or os.environ.get(HISTORY_ENV) or str(reports / DEFAULT_NAME)
    if "://" not in location and not Path(location).is_file():
        print(f"no run history at {location} (run the suite first, or give --dsn)", file=sys.stderr)
        return EXIT_USAGE
    try:
        with HistoryStore.open(location) as store:
            rows = store.timeline(
                system=args.system, check=args.check, marker_expression=args.markers, limit=args.runs
            )
    except HistoryError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if not rows:
        print(f"no run of a matching check in {display(location)}")
        return EXIT_NOTHING
    now = datetime.now(UTC)
    by_check: dict[str, list[tuple[RunInfo, Result]]] = {}
    for run, result in rows:
        by_check.setdefault(result.check, []).append((run, result))
    for check, runs in sorted(by_check.items()):
        print(SECRETS.mask("\n".join(timeline(check, runs, now))))
        print()
    return EXIT_OK


def timeline(check: str, runs: list[tuple[RunInfo, Result]], now: datetime) -> list[str]:
    """One check's stretches of one state, oldest first, and a closing line."""
    last = runs[-1][1]
    lines = [f"{check} [{last.severity or '-'}] {last.title}"]
    known = [(run, result, state(result.outcome)) for run, result in runs if state(result.outcome)]
    stretches = [list(group) for _, group in itertools.groupby(known, key=lambda item: item[2])]
    for index, stretch in enumerate(stretches):
        first_run, first_result, colour = stretch[0]
        ends = stretches[index + 1][0][0].started if index + 1 < len(stretches) else None
        lasted = (parse_time(ends) if ends else now) - parse_time(first_run.started)
        count = f"{len(stretch)} run{'s' if len(stretch) != 1 else ''}"
        word = "RED  " if colour == "red" else "green"
        until = span(lasted.total_seconds()) + ("" if ends else " so far")
        found = f"  {first_result.found}" if colour == "red" and first_result.found else ""
        lines.append(f"  {short_time(first_run.started)}  {word}  {count:>8}  {until:<16}{found}")
    if not stretches:
        return [*lines, f"  never checked: {len(runs)} run(s) skipped it"]
    turned_red = sum(1 for stretch in stretches if stretch[0][2] == "red")
    window = [colour for _, _, colour in known[-FlapPolicy.runs :]]
    changes = sum(1 for earlier, later in itertools.pairwise(window) if earlier != later)
    flapping = " (flapping)" if changes >= FlapPolicy.changes else ""
    lately = f"{changes} change(s) of state in the last {len(window)} runs{flapping}"
    lines.append(f"  turned red {turned_red} time(s); {lately}")
    return [line.rstrip() for line in lines]


def _incident(args: argparse.Namespace) -> int:
    reports = reports_folder(args.reports_dir, Path.cwd())
    if args.action == "list":
        folders = [folder for folder in run_folders(reports) if (folder / bundle.MANIFEST).is_file()]
        for folder in sorted(folders):
            print(f"{folder.name}  {'open' if bundle.is_open(folder) else 'closed'}")
        return EXIT_OK
    if not args.folder:
        print("incident close: name the run folder (reports/<run>)", file=sys.stderr)
        return EXIT_USAGE
    folder = Path(args.folder)
    if not folder.is_dir():
        folder = reports / args.folder
    if not bundle.close(folder, iso(datetime.now(UTC))):
        print(f"{folder}: no open incident bundle", file=sys.stderr)
        return EXIT_NOTHING
    print(f"{folder}: incident bundle closed; retention may delete its runs once they are old enough")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
