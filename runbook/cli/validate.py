"""`python -m runbook validate [--systems=DIR]`: every problem of every description at once.

Exit 0 when every file is valid, 4 otherwise; each problem on one line as
`file:line: field: message`, sorted by file and line (an editor's "go to" format).
`${VAR}` secrets need not be set: a description is checked for what it says.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from runbook.cli import EXIT_OK, EXIT_USAGE
from runbook.describe.problems import check_location


def add(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "validate", help="check descriptions: every problem with file, field and line"
    )
    parser.add_argument("--systems", default="systems", help="descriptions folder or file (default systems)")
    parser.add_argument("--json", action="store_true", help="the problems as JSON")


def run(args: argparse.Namespace) -> int:
    problems, systems = check_location(Path(args.systems))
    if args.json:
        print(json.dumps({"valid": not problems, "problems": [p.to_json() for p in problems]}, indent=2))
    else:
        for problem in problems:
            print(replace(problem, file=_relative(problem.file)))
        files = len({problem.file for problem in problems})
        if problems:
            print(f"{len(problems)} problem(s) in {files} file(s); {len(systems)} description(s) valid")
        else:
            checks = sum(len(system.checks.all()) for system in systems)
            print(f"{len(systems)} description(s) valid ({checks} checks) in {args.systems}")
    return EXIT_USAGE if problems else EXIT_OK


def _relative(path: Path) -> Path:
    """systems/shop.yml rather than /home/.../systems/shop.yml, when the file is below here."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
