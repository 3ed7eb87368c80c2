"""Every problem of a folder of descriptions at once, each with its file, field and line.

Loading a description stops at its first broken file (a run cannot start with it);
`python -m runbook validate` instead reads every file to its end and lists all
problems, each placed at the line of the YAML that says it. pydantic's error
locations are paths into the merged data; for an overlay the line is the one of the
file in its `extends:` chain that says the field (the overlay first), list items of
checks matched by `id` as the merge matches them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runbook.describe.coverage import description_files
from runbook.describe.loader import DescriptionError, prepare, problem_items
from runbook.describe.schema import System
from runbook.describe.yamlfile import YamlFileError, read_yaml, read_yaml_lines

# A whole-system error names its place at the start of its message: checks.http[1] (id x).host: ...
_PLACE = re.compile(r"^checks\.(\w+)\[(\d+)\](?: \(id [^)]*\))?(?:\.(\w+))?|^groups\.([\w.-]+)")
# A YamlFileError or a DescriptionError from the loader starts with `path[:line[:column]]: `.
_FILE_LINE = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+)(?::\d+)?: ")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file: where (file, line, field path) and what."""

    file: Path
    field: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.file), "line": self.line, "field": self.field, "message": self.message}


def check_location(location: Path) -> tuple[list[Problem], list[System]]:
    """Every problem of every description at `location`, and the systems that are valid."""
    if not location.exists():
        return [Problem(location, "", None, "no such file or folder of descriptions")], []
    files = description_files(location)
    if not files:
        return [Problem(location, "", None, "no *.yml system descriptions in this folder")], []
    problems: list[Problem] = []
    systems: list[System] = []
    named: dict[str, Path] = {}
    for path in files:
        found, system = check_file(path)
        problems += found
        if system is None:
            continue
        systems.append(system)
        if system.system in named:
            first = named[system.system]
            message = f"system {system.system!r} is also described in {first} (one file per system)"
            problems.append(Problem(path, "system", read_yaml_lines(path).get(("system",)), message))
        named.setdefault(system.system, path)
    return problems, systems


def check_file(path: Path) -> tuple[list[Problem], System | None]:
    """Every problem of one description (all its fields), or none and its System."""
    try:
        data, chain, _missing = prepare(path, {})
    except DescriptionError as exc:
        return [_from_message(path, str(exc))], None
    except Exception as exc:  # a bug in a reader: still a problem of this file, not a traceback
        return [Problem(path, "", None, f"cannot load: {type(exc).__name__}: {exc}")], None
    try:
        return [], System.model_validate(data)
    except ValidationError as exc:
        placed = Placer(chain, data)
        problems = []
        items = problem_items(exc, data)
        # The whole-system validator names only its first finding (and runs only if fields are valid).
        said = " ".join(message for loc, _, message in items if not loc)
        items += [item for item in _consistency(data) if _as_system_says(item) not in said]
        for loc, where, message in items:
            if not loc:
                loc, where = _place_in_message(message)
                message = message.removeprefix(where).removeprefix(":").lstrip() if where else message
            file, line = placed.line(loc)
            problems.append(Problem(file or path, where, line, message))
        return sorted(problems, key=lambda problem: (str(problem.file), problem.line or 0)), None


def _consistency(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    """What System's whole-system validator says (an id twice, an unknown host), read from the data.

    pydantic runs that validator only once every field is valid; a writer fixing a file wants
    these problems in the same list, so they are looked for here as well when fields fail.
    """
    checks = data.get("checks")
    if not isinstance(checks, dict):
        return []
    hosts = data.get("hosts") if isinstance(data.get("hosts"), dict) else None
    groups = data.get("groups") if isinstance(data.get("groups"), dict) else {}
    found, seen = [], {}
    for kind, items in checks.items():
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            place = f"checks.{kind}[{index}] (id {item['id'][:80]})"
            if item["id"] in seen:
                message = f"check id {item['id']!r} is used twice (first: {seen[item['id']]})"
                found.append((("checks", kind, index, "id"), f"{place}.id", message))
            seen.setdefault(item["id"], place)
            host = item.get("host")
            if hosts is not None and isinstance(host, str) and host not in hosts and host not in groups:
                known = sorted(hosts) + [f"group {group}" for group in sorted(groups)]
                found.append(
                    (("checks", kind, index, "host"), f"{place}.host", f"host {host!r} is not one of {known}")
                )
    return found


def _as_system_says(item: tuple[tuple[Any, ...], str, str]) -> str:
    """A finding of _consistency in the words of System's validator (which names the place)."""
    _loc, where, message = item
    return f"{where.removesuffix('.id')}: {message}"


def _from_message(path: Path, message: str) -> Problem:
    """A loader error as a problem: its text names the file and maybe the line (YAML errors do)."""
    match = _FILE_LINE.match(message)
    if match:
        return Problem(Path(match["file"]), "", int(match["line"]), message[match.end() :])
    return Problem(path, "", None, message.removeprefix(f"{path}: ").removeprefix(f"{path.resolve()}: "))


def _place_in_message(message: str) -> tuple[tuple[Any, ...], str]:
    """The location a whole-system error names in its text, and that text."""
    match = _PLACE.match(message)
    if not match:
        return (), ""
    if match[4]:
        return ("groups", match[4]), match[0]
    loc: tuple[Any, ...] = ("checks", match[1], int(match[2]))
    return ((*loc, match[3]) if match[3] else loc), match[0]


class Placer:
    """Lines of the files of one `extends:` chain, for locations in their merged data."""

    def __init__(self, chain: tuple[Path, ...], merged: dict[str, Any]) -> None:
        self.merged = merged
        self.files = []
        for file in chain:
            try:
                raw = read_yaml(file)
            except YamlFileError:
                continue
            self.files.append((file, raw, read_yaml_lines(file)))

    def line(self, loc: tuple[Any, ...]) -> tuple[Path | None, int | None]:
        """The file that says the longest part of loc (overlay first) and its line there."""
        best: tuple[int, Path | None, int | None] = (0, None, None)
        for file, raw, lines in self.files:
            path = self._in_file(loc, raw)
            while path and path not in lines:
                path = path[:-1]
            if path and len(path) > best[0]:
                best = (len(path), file, lines[path])
        return best[1], best[2]

    def _in_file(self, loc: tuple[Any, ...], raw: Any) -> tuple[Any, ...]:
        """loc as a path into one file's own data: a check list's index found by the check's id."""
        merged, path = self.merged, []
        for item in loc:
            if isinstance(item, int) and isinstance(merged, list) and isinstance(raw, list):
                wanted = (
                    merged[item].get("id") if item < len(merged) and isinstance(merged[item], dict) else None
                )
                ids = [entry.get("id") if isinstance(entry, dict) else None for entry in raw]
                index = ids.index(wanted) if wanted is not None and wanted in ids else None
                if index is None and wanted is None and item < len(raw):
                    index = item
                if index is None:
                    break
                path.append(index)
                merged = merged[item] if item < len(merged) else None
                raw = raw[index]
            elif isinstance(item, str) and isinstance(merged, dict) and isinstance(raw, dict) and item in raw:
                path.append(item)
                merged, raw = merged.get(item), raw[item]
            else:
                break
        return tuple(path)
