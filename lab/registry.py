"""Which production systems the lab can build.

A new system (VPN master with replicas, loyalty API with PostgreSQL, ...) is one package
whose `SYSTEM` is a `lab.system.LabSystem`, plus one line at the END of SYSTEMS: a system's
position there is its slot in the lab's address range (see lab.addresses), so it never moves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lab.core import UsageError

if TYPE_CHECKING:
    from lab.system import LabSystem

# name of the system (as in the runbook/suite) -> package implementing it; append only
SYSTEMS: dict[str, str] = {
    "ai-calendar-assistant": "lab.calendar",
    "map-v12": "lab.map_v12",
}


def names() -> list[str]:
    return list(SYSTEMS)


def get(name: str) -> LabSystem:
    if name not in SYSTEMS:
        raise UsageError(f"unknown system {name!r}; known systems: {', '.join(SYSTEMS)}")
    system: LabSystem = importlib.import_module(SYSTEMS[name]).SYSTEM
    return system
