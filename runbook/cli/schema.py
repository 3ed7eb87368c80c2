"""`python -m runbook schema [--markdown]`: the description format from its models.

Without options, the JSON Schema (docs/description.schema.json); `--markdown`, the
field reference (docs/fields.md). Point an editor at the schema, e.g. for VS Code's YAML
extension: `# yaml-language-server: $schema=../docs/description.schema.json`.
"""

from __future__ import annotations

import argparse
import sys

from runbook.cli import EXIT_OK
from runbook.describe.reference import fields_markdown, schema_text


def add(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser("schema", help="the description format as JSON Schema (or --markdown)")
    parser.add_argument("--markdown", action="store_true", help="the field reference (docs/fields.md)")


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(fields_markdown() if args.markdown else schema_text())
    return EXIT_OK
