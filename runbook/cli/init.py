"""`python -m runbook init [--system NAME --host SPEC] [DIR]`: a checklist project in any folder.

An ops team keeps its descriptions in its own repository, with runbook-suite installed
from its wheel. `init` writes what the suite's own clone has around its descriptions:
the test entry files (tests_health/, tests_backup/, tests_config/: thin tests the plugin
parametrizes with the checks), pytest.ini (the suite's settings, systems/ as the
descriptions), tox.ini (daily/smoke/incident, the whole environment passed for secrets),
and with `--system`, a commented starting description and its runbook stub. Files that
exist are left alone and named; the templates ship in the wheel (runbook/cli/templates/).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import resources
from pathlib import Path

from runbook.cli import EXIT_OK, EXIT_USAGE

SYSTEM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
HOST_SPEC = re.compile(r"^[a-z][a-z0-9+.-]*://\S*$")
TEMPLATE_SUFFIX = ".tmpl"
# Hidden files do not ship well as package data: the template's name, and the name written.
RENAMED = {"gitignore": ".gitignore"}


def add(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "init", help="write a checklist project here: tests, pytest.ini, tox.ini, systems/"
    )
    parser.add_argument("directory", nargs="?", default=".", help="where (default: the current folder)")
    parser.add_argument("--system", help="write systems/NAME.yml, a commented starting description")
    parser.add_argument("--host", default="local://", help="the system's host spec (default local://)")
    parser.add_argument("--title", help="the system's title (default: its name)")


def run(args: argparse.Namespace) -> int:
    if args.system is not None and not SYSTEM_NAME.match(args.system):
        print(f"--system {args.system!r}: lowercase letters, digits and - (e.g. my-api)", file=sys.stderr)
        return EXIT_USAGE
    if not HOST_SPEC.match(args.host):
        print(f"--host {args.host!r}: not a host spec (local://, ssh://user@host, ...)", file=sys.stderr)
        return EXIT_USAGE
    root = Path(args.directory)
    files = project_files()
    if args.system:
        values = {
            "system": args.system,
            "host": json.dumps(args.host),
            "title": json.dumps(args.title or args.system),
        }
        files[f"systems/{args.system}.yml"] = fill(_template("description.yml"), values)
        files[f"runbooks/{args.system}.md"] = fill(
            _template("runbook.md"), {**values, "title": args.title or args.system}
        )
    written, kept = write(root, files)
    for name in written:
        print(f"wrote {root / name}")
    for name in kept:
        print(f"kept  {root / name} (exists)")
    if not args.system and not any((root / "systems").glob("*.yml")):
        print("next: python -m runbook init --system NAME --host SPEC (a starting description)")
    else:
        print("next: python -m runbook validate; python -m runbook list -m daily; pytest -m daily")
    return EXIT_OK


def project_files() -> dict[str, str]:
    """Every file of the project template by its path in the project."""
    found: dict[str, str] = {}
    base = resources.files("runbook.cli") / "templates" / "project"
    pending = [(base, "")]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((entry, f"{prefix}{entry.name}/"))
            elif entry.name.endswith(TEMPLATE_SUFFIX):
                name = entry.name.removesuffix(TEMPLATE_SUFFIX)
                found[prefix + RENAMED.get(name, name)] = entry.read_text(encoding="utf-8")
    return dict(sorted(found.items()))


def _template(name: str) -> str:
    return (resources.files("runbook.cli") / "templates" / f"{name}{TEMPLATE_SUFFIX}").read_text(
        encoding="utf-8"
    )


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def write(root: Path, files: dict[str, str]) -> tuple[list[str], list[str]]:
    """Write each file that does not exist yet; the names written and the names kept."""
    written, kept = [], []
    for name, text in files.items():
        target = root / name
        if target.exists():
            kept.append(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(name)
    return written, kept
