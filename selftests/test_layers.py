"""The house keeps its layers: no import circle, no import from a lower layer to a higher one.

runbook/ is built in floors, each a folder (or a few top-level modules), and a module may
import only from its own floor or the floors below it. The floors, bottom up, are LAYERS.
Kinds (runbook/checks/) import no other kind: what two kinds share lives below them in
runbook/host/ or runbook/describe/. Imports are read from the source (ast), TYPE_CHECKING
ones included, so a circle hidden behind a type hint still shows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "runbook"
# Bottom up. A module belongs to the longest prefix that names it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("runbook.errors",),  # what a check raises: imports nothing of ours
    ("runbook.secrets",),  # what a run must never show
    ("runbook.keys", "runbook.record"),  # stash keys; the typed run record
    ("runbook.describe",),  # the description format: models, kinds registry, loader
    ("runbook.host",),  # reaching hosts and services: transports, Target, docker, PostgreSQL, HTTP
    ("runbook.checks",),  # the kinds: verdicts on what host/ reads
    ("runbook.run",),  # pytest wiring: cases, gate, prefetch, verdict, sharding
    ("runbook.readers",),  # what reads a run afterwards: history, waivers, incident, ...
    ("runbook.report",),  # the writers: HTML, JUnit, summary
    # entry points; runbook.cli: the commands of `python -m runbook` (init, validate, list, ...)
    ("runbook.plugin", "runbook.__main__", "runbook.merge", "runbook.cli", "runbook"),
)
MAX_TOP_LEVEL_MODULES = 15


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The runbook modules `name` imports (a package's submodule when `from pkg import sub`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "runbook"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "runbook":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {imported for imported in found if imported in MODULES and imported != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> int:
    best, floor = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, floor = len(prefix), index
    assert floor >= 0, f"{name} is on no floor: add it to LAYERS"
    return floor


def test_every_module_is_on_a_floor() -> None:
    for name in MODULES:
        layer_of(name)


def test_no_import_runs_up_a_floor() -> None:
    upward = [
        f"{name} (floor {layer_of(name)}) imports {imported} (floor {layer_of(imported)})"
        for name, imported_names in GRAPH.items()
        for imported in sorted(imported_names)
        if layer_of(imported) > layer_of(name)
    ]
    assert upward == []


def test_no_import_circle() -> None:
    """Depth-first search for a back edge; the message names the circle."""
    state: dict[str, str] = {}
    circles: list[str] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for imported in sorted(GRAPH[name]):
            if state.get(imported) == "open":
                circles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_kinds_import_no_other_kind() -> None:
    sideways = [
        f"{name} imports {imported}"
        for name, imported_names in GRAPH.items()
        if name.startswith("runbook.checks.")
        for imported in sorted(imported_names)
        if imported.startswith("runbook.checks")
    ]
    assert sideways == []


def test_only_runbook_host_reaches_into_transports() -> None:
    """Above host/, the seam is the Target and runbook.host.processes, never a transport's inside."""
    reaching = [
        f"{name} imports {imported}"
        for name, imported_names in GRAPH.items()
        if not name.startswith("runbook.host")
        for imported in sorted(imported_names)
        if imported.startswith("runbook.host.transports.")
    ]
    assert reaching == []


def test_few_modules_stay_at_the_top() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize("upward", [("runbook.host.target", "runbook.run.collect")])
def test_the_checker_sees_an_upward_import(upward: tuple[str, str]) -> None:
    """The rule itself is checked: an import from host/ into run/ would be refused."""
    low, high = upward
    assert layer_of(high) > layer_of(low)
