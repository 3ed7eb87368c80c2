"""The description format's JSON Schema and field reference are generated, committed and current.

docs/description.schema.json (for editors: completion and checking as a description is typed)
and docs/fields.md (for readers) come from the models the loader validates with, through
`python -m runbook schema [--markdown]` (issue 19 point 4). When a model changes, regenerate:

    .venv/bin/python -m runbook schema > docs/description.schema.json
    .venv/bin/python -m runbook schema --markdown > docs/fields.md
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook.__main__ import COMMANDS
from runbook.describe.reference import fields_markdown, json_schema, schema_text
from runbook.describe.schema import CHECK_KINDS
from runbook.describe.yamlfile import read_yaml

REPO = Path(__file__).resolve().parents[1]
REGENERATE = "regenerate: python -m runbook schema [--markdown] > docs/..."


def test_the_committed_schema_is_current() -> None:
    assert (REPO / "docs/description.schema.json").read_text(encoding="utf-8") == schema_text(), REGENERATE


def test_the_committed_field_reference_is_current() -> None:
    assert (REPO / "docs/fields.md").read_text(encoding="utf-8") == fields_markdown(), REGENERATE


@pytest.mark.slow
def test_the_command_prints_both() -> None:
    for argv, expected in ((["schema"], schema_text()), (["schema", "--markdown"], fields_markdown())):
        done = subprocess.run(
            [sys.executable, "-m", "runbook", *argv], cwd=REPO, capture_output=True, text=True, check=True
        )
        assert done.stdout == expected


def test_the_reference_names_every_kind_and_field() -> None:
    text = fields_markdown()
    for kind, model in CHECK_KINDS.items():
        assert f"## `{kind}`" in text
        for field in model.model_fields:
            assert f"| `{field}` |" in text, (kind, field)


@pytest.mark.parametrize("path", sorted(REPO.glob("systems/*.yml")), ids=lambda path: path.name)
def test_the_schema_knows_every_key_the_suites_descriptions_use(path: Path) -> None:
    """Each key of a real description is a property of the schema at its place (no false alarm)."""
    schema = json_schema()
    defs = schema["$defs"]
    data = read_yaml(path)
    unknown = [key for key in data if key not in schema["properties"] and not key.startswith("x-")]
    checks = defs["Checks"]["properties"]
    for kind, items in data.get("checks", {}).items():
        if kind not in checks:
            unknown.append(f"checks.{kind}")
            continue
        model = defs[checks[kind]["items"]["$ref"].rsplit("/", 1)[-1]]
        unknown += [
            f"checks.{kind}.{key}" for item in items for key in item if key not in model["properties"]
        ]
    assert unknown == []


def test_durations_and_sizes_are_written_as_text_too() -> None:
    """'24h' and '1G' are what descriptions write: the schema must not call them wrong."""
    defs: dict[str, Any] = json_schema()["$defs"]
    since = defs["JournaldCheck"]["properties"]["since"]
    assert [option.get("type") for option in _options(since)] == ["number", "string"], since
    assert "smhd" in json.dumps(since) and since["description"].startswith("window: 1h")
    size = defs["HttpCheck"]["properties"]["max_body_bytes"]
    assert [option.get("type") for option in _options(size)] == ["integer", "string", "null"], size


def _options(prop: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for option in prop.get("anyOf", [prop]):
        found += _options(option) if "anyOf" in option else [option]
    return found


def test_the_readme_documents_every_command_of_python_m_runbook() -> None:
    """Next to 'Describing your own system', each command has its line (issue 19: README documents them)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Your own checklist project")
    section = text[start : text.index("## Describing your own system", start)]
    for command in [*COMMANDS, "coverage"]:
        assert f"- `{command} [" in section, command
