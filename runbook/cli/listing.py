"""`python -m runbook list [-m EXPR] [--system S] [--json]`: the checks a run would select.

One line per check: `system:id`, kind, severity, markers, title, where the description
says it (`file:line`) and the runbook lines it asserts (its `source:`), if any. `-m`
is pytest's own marker expression (`daily`, `smoke and not incident`), evaluated by
pytest's parser against each check's markers, so the list is what `pytest -m` runs
(plus one `reachable-<host>` check per host, which every selection includes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _pytest.mark.expression import Expression

from runbook.cli import EXIT_FOUND, EXIT_OK, EXIT_USAGE
from runbook.describe.loader import DescriptionError, LoadedSystem, load_systems, prepare
from runbook.describe.problems import Placer
from runbook.describe.schema import CHECK_KINDS


def add(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("list", help="the checks: id, kind, severity, markers, title, source")
    parser.add_argument(
        "-m", dest="markers", default="", help="marker expression, as pytest's -m (e.g. daily)"
    )
    parser.add_argument("--system", action="append", default=[], help="only this system (repeatable)")
    parser.add_argument("--systems", default="systems", help="descriptions folder or file (default systems)")
    parser.add_argument("--json", action="store_true", help="one JSON object per check, in a list")


def run(args: argparse.Namespace) -> int:
    try:
        expression = Expression.compile(args.markers) if args.markers else None
    except Exception as exc:  # pytest's ParseError: the same words pytest -m would say
        print(f"-m {args.markers!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        systems = load_systems(Path(args.systems), args.system or None)
    except DescriptionError as exc:
        print(exc, file=sys.stderr)
        print("(python -m runbook validate lists every problem)", file=sys.stderr)
        return EXIT_USAGE
    rows = [row for system in systems for row in rows_of(system) if _selected(expression, row["markers"])]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for row in rows:
            print(line(row))
        print(f"{len(rows)} check(s)" + (f" selected by -m {args.markers!r}" if args.markers else ""))
    return EXIT_OK if rows else EXIT_FOUND


def _selected(expression: Expression | None, markers: list[str]) -> bool:
    if expression is None:
        return True
    return expression.evaluate(lambda name, /, **kwargs: not kwargs and name in markers)


def rows_of(system: LoadedSystem) -> list[dict[str, Any]]:
    """Every check of one system, in the order of kinds and of the description."""
    data, _chain, _missing = prepare(system.path, {})
    placer = Placer(system.chain, data)
    rows = []
    for kind in CHECK_KINDS:
        merged = data.get("checks", {}).get(kind, []) if isinstance(data.get("checks"), dict) else []
        ids = [item.get("id") if isinstance(item, dict) else None for item in merged]
        for check in system.model.checks.of_kind(kind):
            index = ids.index(check.id) if check.id in ids else None
            file, at = placer.line(("checks", kind, index)) if index is not None else (None, None)
            rows.append(
                {
                    "system": system.name,
                    "id": check.id,
                    "kind": kind,
                    "severity": check.severity,
                    "markers": list(check.effective_markers),
                    "title": check.title,
                    "hosts": system.model.hosts_of(check) or [system.model.host_of(check)],
                    "description": f"{file}:{at}" if file else str(system.path),
                    "source": [source.lines for source in check.source or []],
                    "section": check.section,
                }
            )
    return rows


def line(row: dict[str, Any]) -> str:
    markers = ",".join(row["markers"])
    source = f"  runbook lines {', '.join(row['source'])}" if row["source"] else ""
    where = _relative(row["description"])
    name = f"{row['system']}:{row['id']}"
    return f"{name:<40} {row['kind']:<13} {row['severity']}  {markers:<23} {row['title']}  ({where}){source}"


def _relative(place: str) -> str:
    try:
        return str(Path(place).relative_to(Path.cwd()))
    except ValueError:
        return place
