"""Reading description files: YAML, overlays (`extends:`), `${ENV}` secrets.

An overlay names the file it extends and says only what differs (hosts, ports,
paths): mappings merge key by key, and check lists merge by check `id`, so a
staging file can move one check to another path without repeating the rest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runbook.schema import System
from runbook.secrets import SECRETS

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class DescriptionError(Exception):
    """A description file that cannot be used; the message names file, field and problem."""


@dataclass(frozen=True)
class LoadedSystem:
    """A validated system plus where it came from and what it still lacks."""

    model: System
    path: Path
    chain: tuple[Path, ...]
    missing_env: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.model.system

    @property
    def runbook_path(self) -> Path:
        """The runbook file (resolved against the file that named it, at load time)."""
        return Path(self.model.runbook)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DescriptionError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DescriptionError(f"{path}{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise DescriptionError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def merge(base: Any, overlay: Any) -> Any:
    """Overlay wins; mappings merge recursively; lists of checks merge by id."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(overlay, list) and _all_have_ids(base + overlay):
        merged_list = list(base)
        index = {item["id"]: pos for pos, item in enumerate(merged_list)}
        for item in overlay:
            if item["id"] in index:
                pos = index[item["id"]]
                merged_list[pos] = merge(merged_list[pos], item)
            else:
                index[item["id"]] = len(merged_list)
                merged_list.append(item)
        return merged_list
    return overlay


def _all_have_ids(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "id" in item for item in items)


def _resolve_chain(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], tuple[Path, ...]]:
    path = path.resolve()
    if path in seen:
        cycle = " -> ".join(str(p) for p in (*seen, path))
        raise DescriptionError(f"{path}: extends itself: {cycle}")
    data = _read_yaml(path)
    if isinstance(data.get("runbook"), str):
        data["runbook"] = str((path.parent / data["runbook"]).resolve())
    parent = data.pop("extends", None)
    if parent is None:
        return data, (path,)
    if not isinstance(parent, str):
        raise DescriptionError(f"{path}: extends: must be a file path")
    base, chain = _resolve_chain(path.parent / parent, (*seen, path))
    return merge(base, data), (path, *chain)


def interpolate(data: Any, where: str, missing: dict[str, list[str]]) -> Any:
    """Replace ${NAME} from the environment; remember values as secrets, names as missing."""
    if isinstance(data, dict):
        return {key: interpolate(value, f"{where}.{key}", missing) for key, value in data.items()}
    if isinstance(data, list):
        return [interpolate(value, f"{where}[{pos}]", missing) for pos, value in enumerate(data)]
    if not isinstance(data, str):
        return data

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            missing.setdefault(name, []).append(where.lstrip("."))
            return match.group(0)
        SECRETS.add(value, name)
        return value

    return ENV_REF.sub(substitute, data)


def _field_path(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """'checks.backups[2] (id backup-fresh).max_age_hours' from a pydantic location."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and "id" in node:
                    label += f" (id {node['id']})"
            parts.append(label)
        else:
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def load_file(path: Path) -> LoadedSystem:
    data, chain = _resolve_chain(path)
    # x-* keys hold YAML anchors for reuse (as in docker compose files); they are not fields.
    data = {key: value for key, value in data.items() if not str(key).startswith("x-")}
    missing: dict[str, list[str]] = {}
    data = interpolate(data, "", missing)
    try:
        model = System.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = _field_path(error["loc"], data)
            message = error["msg"].removeprefix("Value error, ")
            # Whole-system errors (duplicate id, unknown host) name their place in the message.
            lines.append(f"  {where}: {message}" if where else f"  {message}")
        raise DescriptionError(f"{path}: invalid system description\n" + "\n".join(lines)) from None
    return LoadedSystem(
        model=model,
        path=path.resolve(),
        chain=chain,
        missing_env={name: tuple(places) for name, places in missing.items()},
    )


def load_systems(location: Path, only: list[str] | None = None) -> list[LoadedSystem]:
    """All *.yml / *.yaml files of a folder (not its subfolders), or one file."""
    if location.is_dir():
        files = sorted(p for p in location.iterdir() if p.suffix in {".yml", ".yaml"})
        if not files:
            raise DescriptionError(f"{location}: no *.yml system descriptions in this folder")
    elif location.is_file():
        files = [location]
    else:
        raise DescriptionError(f"{location}: no such file or folder")
    systems = [load_file(path) for path in files]
    names = [system.name for system in systems]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DescriptionError(f"{location}: system named twice: {', '.join(duplicates)}")
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise DescriptionError(
                f"--system {', '.join(unknown)}: not described in {location} "
                f"(known: {', '.join(sorted(names))})"
            )
        systems = [system for system in systems if system.name in only]
    return systems
