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

from pydantic import ValidationError

from runbook.describe import inventory, shell_text
from runbook.describe.hints import closest_field, field_elsewhere
from runbook.describe.params import fill as fill_params
from runbook.describe.schema import CHECK_KINDS, System
from runbook.describe.yamlfile import YamlFileError, read_yaml
from runbook.secrets import SECRETS, is_a_limit

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_EXTENDS = 10
# A file with a thousand broken checks needs its first errors, not a thousand lines.
MAX_ERRORS_SHOWN = 20


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


def _read_yaml(path: Path, named_by: Path | None = None) -> dict[str, Any]:
    try:
        data = read_yaml(path)
    except YamlFileError as exc:
        referrer = f" (named by extends: in {named_by})" if named_by else ""
        raise DescriptionError(f"{exc}{referrer}") from None
    if not isinstance(data, dict):
        raise DescriptionError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def merge(base: Any, overlay: Any, where: str = "") -> Any:
    """Overlay wins; mappings merge recursively; lists of checks merge by id."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            inner = f"{where}.{key}" if where else str(key)
            merged[key] = merge(base[key], value, inner) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(overlay, list) and base and all(map(_has_id, base)):
        merged_list = list(base)
        index = {item["id"]: pos for pos, item in enumerate(merged_list)}
        for pos, item in enumerate(overlay):
            if not _has_id(item):
                raise DescriptionError(
                    f"{where}[{pos}]: needs an id (a string) to merge with the checks it extends"
                )
            known = index.get(item["id"])
            if known is None:
                index[item["id"]] = len(merged_list)
                merged_list.append(item)
            else:
                merged_list[known] = merge(merged_list[known], item, f"{where}[{pos}]")
        return merged_list
    return overlay


def _has_id(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str)


def resolve_chain(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], tuple[Path, ...]]:
    path = path.resolve()
    if path in seen:
        cycle = " -> ".join(str(p) for p in (*seen, path))
        raise DescriptionError(f"{path}: extends itself: {cycle}")
    if len(seen) >= MAX_EXTENDS:
        raise DescriptionError(f"{seen[0]}: extends: more than {MAX_EXTENDS} files deep")
    data = _read_yaml(path, seen[-1] if seen else None)
    for relative in ("runbook", "coverage"):  # paths relative to the file that names them
        if isinstance(data.get(relative), str):
            data[relative] = str((path.parent / data[relative]).resolve())
    parent = data.pop("extends", None)
    if parent is None:
        return data, (path,)
    if not isinstance(parent, str) or not parent:
        raise DescriptionError(f"{path}: extends: must be a file path")
    base, chain = resolve_chain(path.parent / parent, (*seen, path))
    try:
        return merge(base, data), (path, *chain)
    except DescriptionError as exc:
        raise DescriptionError(f"{path}: {exc}") from None


def interpolate(data: Any, where: str, missing: dict[str, list[str]]) -> Any:
    """Replace ${NAME} from the environment; remember values as secrets, names as missing."""
    if isinstance(data, dict):
        return {key: interpolate(value, f"{where}.{key}", missing) for key, value in data.items()}
    if isinstance(data, list):
        return [interpolate(value, f"{where}[{pos}]", missing) for pos, value in enumerate(data)]
    if not isinstance(data, str):
        return data

    shell = shell_text.is_shell_field(where)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            missing.setdefault(name, []).append(where.lstrip("."))
            return match.group(0)
        # a field that is one ${NAME} giving a number is a limit, not a secret
        if not (match.group(0) == data.strip() and is_a_limit(name, value)):
            SECRETS.add(value, name)
        if shell:  # data in a shell command, never code: escaped for the quotes it stands in
            return shell_text.escaped(value, shell_text.quoting_at(data, match.start()))
        return value

    result = ENV_REF.sub(substitute, data)
    if result != data:
        # `http://user:${TOKEN}@host`: Basic auth sends base64("user:token"), known only here.
        SECRETS.add_url_credentials(result)
    return result


def _field_path(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """'checks.backups[2] (id backup-fresh).max_age_hours' from a pydantic location."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int) and not isinstance(node, dict):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    label += f" (id {node['id'][:80]})"
            parts.append(label)
        else:
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def load_file(path: Path, params: dict[str, str] | None = None) -> LoadedSystem:
    """A validated system, or DescriptionError naming the file, the field and the problem."""
    try:
        return _load_file(path, params or {})
    except DescriptionError:
        raise
    except Exception as exc:  # a bug here: still one message naming the file, not a traceback
        raise DescriptionError(f"{path}: cannot load: {type(exc).__name__}: {exc}") from exc


def prepare(
    path: Path, params: dict[str, str]
) -> tuple[dict[str, Any], tuple[Path, ...], dict[str, list[str]]]:
    """A file's data as the model reads it (overlays merged, ${VAR} and params filled), its chain
    of files and the ${VAR}s missing from the environment; DescriptionError when it has no such data.
    """
    data, chain = resolve_chain(path)
    # x-* keys hold YAML anchors for reuse (as in docker compose files); they are not fields.
    data = {key: value for key, value in data.items() if not str(key).startswith("x-")}
    missing: dict[str, list[str]] = {}
    data = interpolate(data, "", missing)
    try:
        data = inventory.join(data, path.parent)
        data = fill_params(data, params)
    except ValueError as exc:
        raise DescriptionError(f"{path}: {exc}") from None
    return data, chain, missing


def _load_file(path: Path, params: dict[str, str]) -> LoadedSystem:
    data, chain, missing = prepare(path, params)
    try:
        model = System.model_validate(data)
    except ValidationError as exc:
        raise DescriptionError(f"{path}: invalid system description\n" + _problems(exc, data)) from None
    return LoadedSystem(
        model=model,
        path=path.resolve(),
        chain=chain,
        missing_env={name: tuple(places) for name, places in missing.items()},
    )


def _problems(exc: ValidationError, data: dict[str, Any]) -> str:
    """One line per problem: field path and message, with a hint for a misspelt key."""
    lines = []
    errors = exc.errors()
    for _loc, where, message in problem_items(exc, data)[:MAX_ERRORS_SHOWN]:
        # Whole-system errors (duplicate id, unknown host) name their place in the message.
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more")
    return "\n".join(lines)


def problem_items(exc: ValidationError, data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    """Every problem of a validation: pydantic's location, the field path shown, the message."""
    items = []
    for error in exc.errors():
        where = _field_path(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            meant = closest_field(System, error["loc"])
            message += f" (did you mean {meant!r}?)" if meant else ""
            message += field_elsewhere(CHECK_KINDS, error["loc"])
        items.append((tuple(error["loc"]), where, message))
    return items


def load_systems(
    location: Path, only: list[str] | None = None, params: dict[str, str] | None = None
) -> list[LoadedSystem]:
    """All *.yml / *.yaml files of a folder (not its subfolders), or one file."""
    if location.is_dir():
        files = sorted(p for p in location.iterdir() if p.suffix in {".yml", ".yaml"})
        if not files:
            raise DescriptionError(f"{location}: no *.yml system descriptions in this folder")
    elif location.is_file():
        files = [location]
    elif location.exists():
        raise DescriptionError(f"{location}: not a file or folder of descriptions")
    else:
        raise DescriptionError(f"{location}: no such file or folder")
    systems = [load_file(path, params) for path in files]
    declared = {name for system in systems for name in system.model.params}
    unknown = sorted(set(params or {}) - declared)
    if unknown:
        raise DescriptionError(
            f"--param {', '.join(unknown)}: no system in {location} has such a parameter "
            f"(parameters: {', '.join(sorted(declared)) or 'none'})"
        )
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
