"""Which production systems the lab can build, and the interface each system module offers.

A new system (VPN master with replicas, loyalty API with PostgreSQL, ...) is one module
with these functions and its own hosts and fault table, plus one line in SYSTEMS.
"""

from __future__ import annotations

import importlib
from typing import Protocol, cast

from lab.core import Component, Fault, UsageError

# name of the system (as in the runbook/suite) -> module implementing it
SYSTEMS: dict[str, str] = {
    "ai-calendar-assistant": "lab.calendar",
}


class System(Protocol):
    NAME: str

    def up(self) -> None: ...

    def down(self, purge: bool = False) -> None: ...

    def status(self) -> list[Component]: ...

    def is_up(self) -> bool: ...

    def faults(self) -> list[Fault]: ...

    def fault(self, name: str) -> Fault: ...

    def active_faults(self) -> list[str]: ...

    def break_fault(self, name: str) -> None: ...

    def heal(self) -> None: ...


def names() -> list[str]:
    return list(SYSTEMS)


def get(name: str) -> System:
    if name not in SYSTEMS:
        raise UsageError(f"unknown system {name!r}; known systems: {', '.join(SYSTEMS)}")
    return cast(System, importlib.import_module(SYSTEMS[name]))
