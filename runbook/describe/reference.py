"""The description format, written out from its models: a JSON Schema and a field reference.

Both come from the same pydantic models the loader validates with (`System` and each
kind's model), so they cannot tell a different story than the loader: the schema lets an
editor (VS Code's YAML extension, JetBrains) complete and check fields as they are typed,
and `docs/fields.md` is the reference a writer reads. `python -m runbook schema` prints
either; selftests/test_reference.py fails when the committed copies are not current.
"""

from __future__ import annotations

import json
from typing import Any

from runbook.describe.schema import CHECK_KINDS, System


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one description file, as a writer writes it."""
    schema = System.model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    # What the loader takes before the model sees the file: an overlay's `extends:` and x-* anchors.
    schema["properties"]["extends"] = {
        "type": "string",
        "description": "the description this overlay extends (a path relative to this file): "
        "mappings merge key by key, check lists by id",
    }
    schema["patternProperties"] = {"^x-": {"description": "YAML anchors for reuse; not a field"}}
    # `source:` is one {lines, quote} or a list of them (the model wraps one in a list first).
    for definition in schema.get("$defs", {}).values():
        source = definition.get("properties", {}).get("source")
        if source and {"$ref": "#/$defs/Source"} not in source.get("anyOf", []):
            source["anyOf"] = [{"$ref": "#/$defs/Source"}, *source.get("anyOf", [])]
    # An overlay may say only what differs, so its required fields come from the file it extends.
    schema["if"] = {"required": ["extends"]}
    schema["then"] = {"required": []}
    schema["else"] = {"required": schema.pop("required", [])}
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def fields_markdown() -> str:
    """docs/fields.md: the top-level fields, the fields every check has, then each kind's own."""
    schema = System.model_json_schema()
    defs = schema.get("$defs", {})
    base_fields = set(CHECK_KINDS[next(iter(CHECK_KINDS))].model_fields)
    for model in CHECK_KINDS.values():
        base_fields &= set(model.model_fields)
    lines = [
        "# Description fields",
        "",
        "Generated from the models by `python -m runbook schema --markdown` (do not edit: "
        "`selftests/test_reference.py` fails when this file is not current). "
        "The JSON Schema of the same format is `docs/description.schema.json`.",
        "",
        "## A system (one YAML file)",
        "",
        *_table(schema, defs, skip=set()),
        "",
        "`extends:` names the description an overlay extends; `x-*` keys hold YAML anchors.",
        "",
        "## Every check",
        "",
        "Every check of every kind has these fields.",
        "",
    ]
    first = CHECK_KINDS[next(iter(CHECK_KINDS))]
    first_schema = defs[first.__name__]
    lines += _table(
        {
            **first_schema,
            "properties": {k: v for k, v in first_schema["properties"].items() if k in base_fields},
        },
        defs,
        skip=set(),
    )
    for kind, model in CHECK_KINDS.items():
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        markers = ", ".join(model.default_markers)
        lines += ["", f"## `{kind}`", "", doc, "", f"Default markers: {markers}. Test group: {model.group}."]
        if model.aspects:
            lines.append(f"Set exactly one of: {', '.join(f'`{a}`' for a in model.aspects)}.")
        lines.append("")
        lines += _table(defs[model.__name__], defs, skip=base_fields)
    nested = sorted(name for name in defs if name not in {m.__name__ for m in CHECK_KINDS.values()})
    lines += ["", "## Nested values", ""]
    for name in nested:
        definition = defs[name]
        if "properties" not in definition:
            continue
        about = definition.get("description", "").strip().splitlines()
        lines += [f"### {name}", "", *(about[:1]), "", *_table(definition, defs, skip=set()), ""]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def _table(definition: dict[str, Any], defs: dict[str, Any], skip: set[str]) -> list[str]:
    required = set(definition.get("required", []))
    rows = ["| field | type | required / default | what |", "|---|---|---|---|"]
    for name, prop in definition.get("properties", {}).items():
        if name in skip:
            continue
        need = "required" if name in required else _default(prop)
        what = _cell(prop.get("description", ""))
        rows.append(f"| `{name}` | {_cell(type_of(prop, defs))} | {need} | {what} |")
    return rows


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    value = prop["default"]
    return f"`{json.dumps(value)}`" if value not in (None, [], {}) else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short reading of a property's schema: 'list of Source', 'P1 \\| P2', 'duration'."""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return " | ".join(str(value) for value in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "anyOf" in prop:
        patterns = " ".join(option.get("pattern", "") for option in prop["anyOf"])
        if "smhd" in patterns:
            return "duration (90s, 30m, 24h, 2d)"
        if "bkmgt" in patterns:
            return "size (512M, 1G)"
        options = [type_of(option, defs) for option in prop["anyOf"] if option.get("type") != "null"]
        return " or ".join(dict.fromkeys(options))
    kind = prop.get("type")
    if kind == "array":
        return f"list of {type_of(prop.get('items', {}), defs)}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"mapping to {type_of(values, defs)}" if isinstance(values, dict) and values else "mapping"
    if kind == "string" and "pattern" in prop:
        return f"string `{prop['pattern']}`"
    return str(kind or "any")
