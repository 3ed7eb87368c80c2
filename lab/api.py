"""Python API of the lab, for the project's own tests (the CLI is a thin layer over it).

`system=None` means every registered system, in registry order (reverse order for down).
"""

from __future__ import annotations

import shutil

from lab import registry
from lab.core import Component, Fault, UsageError, lab_dir
from lab.network import unfence_lab_range
from lab.ssh import ssh_dir


def systems() -> list[str]:
    return registry.names()


def _selected(system: str | None) -> list[str]:
    if system is None:
        return registry.names()
    registry.get(system)  # raises UsageError for an unknown name
    return [system]


def up(system: str | None = None) -> None:
    for name in _selected(system):
        registry.get(name).up()


def down(system: str | None = None, *, purge: bool = False) -> None:
    for name in reversed(_selected(system)):
        registry.get(name).down(purge=purge)
    if purge and system is None:
        # Shared client-side state (SSH key and config, lab.env) goes with the last system.
        shutil.rmtree(ssh_dir(), ignore_errors=True)
        (lab_dir() / "lab.env").unlink(missing_ok=True)
        unfence_lab_range()


def status(system: str | None = None) -> dict[str, list[Component]]:
    return {name: registry.get(name).status() for name in _selected(system)}


def is_up(system: str | None = None) -> bool:
    return all(line.ok for lines in status(system).values() for line in lines)


def faults(system: str | None = None) -> list[Fault]:
    return [fault for name in _selected(system) for fault in registry.get(name).faults()]


def find_fault(name: str, system: str | None = None) -> Fault:
    """The fault called `name`, looked up in `system` or, if None, in every system."""
    if system is not None:
        return registry.get(system).fault(name)
    matches = [fault for fault in faults() if fault.name == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        valid = ", ".join(fault.name for fault in faults())
        raise UsageError(f"unknown fault {name!r}; valid faults: {valid}")
    raise UsageError(f"fault {name!r} exists in several systems; name the system")


def active_faults(system: str | None = None) -> dict[str, list[str]]:
    return {name: registry.get(name).active_faults() for name in _selected(system)}


def break_fault(system: str | None, name: str) -> Fault:
    """Inject fault `name` into `system` (None: the system that has it); returns the Fault."""
    fault = find_fault(name, system)
    registry.get(fault.system).break_fault(name)
    return fault


def heal(system: str | None = None) -> None:
    for name in _selected(system):
        registry.get(name).heal()
