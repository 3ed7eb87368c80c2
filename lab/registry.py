"""Which production systems the lab can build.

A new system (VPN master with replicas, loyalty API with PostgreSQL, ...) is one package
whose `SYSTEM` is a `lab.system.LabSystem`, plus one line in SYSTEMS with its slot. The slot is
the system's share of the lab's address range (see lab.addresses): it is written down, never
derived from the order of the lines, so systems built side by side never move each other's
addresses, and a slot is never reused.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lab.core import UsageError

if TYPE_CHECKING:
    from lab.system import LabSystem

# name of the system (as in the runbook/suite) -> (package implementing it, its slot)
SYSTEMS: dict[str, tuple[str, int]] = {
    "ai-calendar-assistant": ("lab.calendar", 0),
    "map-v12": ("lab.map_v12", 1),
    "loyalty-api": ("lab.loyalty_api", 2),
    "magic-master": ("lab.magic_master", 3),
    "hexenvpn-xray": ("lab.vpn", 4),
}
# Slots of systems being built, so nothing else lands on them (none at the moment).
RESERVED_SLOTS: dict[str, int] = {}


def names() -> list[str]:
    return list(SYSTEMS)


def get(name: str) -> LabSystem:
    if name not in SYSTEMS:
        raise UsageError(f"unknown system {name!r}; known systems: {', '.join(SYSTEMS)}")
    system: LabSystem = importlib.import_module(SYSTEMS[name][0]).SYSTEM
    return system


def slot(name: str) -> int:
    """The system's share of the lab's address range."""
    if name in SYSTEMS:
        return SYSTEMS[name][1]
    if name in RESERVED_SLOTS:
        return RESERVED_SLOTS[name]
    raise UsageError(f"unknown system {name!r}; known systems: {', '.join(SYSTEMS)}")
