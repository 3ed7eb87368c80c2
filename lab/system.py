"""What every lab system does the same way: the up/down/status/break/heal cycle and its books.

A system is a subclass of `LabSystem` that declares its hosts and fault table and says how to
converge to healthy (`converge`) and what its own status lines are (`service_components`).
Everything else, the lab lock, the fault state file, which faults are active and what heal
must undo, lives here, so `python -m lab` behaves the same for every system.
"""

from __future__ import annotations

import dataclasses
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from lab.core import Component, Fault, JsonState, LabError, UsageError, lab_dir, lab_lock
from lab.host import Host


class LabHost(Protocol):
    """A lab server of any kind (a network namespace `Host`, a `SystemdHost`)."""

    @property
    def label(self) -> str: ...

    def up(self) -> None: ...

    def down(self) -> None: ...

    def purge(self) -> None: ...

    def ok(self) -> bool: ...

    def components(self) -> list[Component]: ...


def state_dir(system: str) -> Path:
    """Lab bookkeeping of a system, outside its servers' view of themselves."""
    return lab_dir() / system / "lab"


class FaultBook:
    """The faults active in a system and what their injections changed, for heal to undo.

    Keys: `active` (fault names, in order), plus lists of what injections note (`injected`
    archive names, ...). It is written before an injection starts, so a half-done one heals too.
    """

    def __init__(self, system: str) -> None:
        self.system = system

    @property
    def state(self) -> JsonState:
        return JsonState(state_dir(self.system) / "faults.json")

    def load(self) -> dict[str, Any]:
        return self.state.load()

    def active(self) -> list[str]:
        return list(self.load().get("active", []))

    def activate(self, fault: str) -> None:
        self.note(active=[fault])

    def note(self, **changes: list[str]) -> None:
        """Add items to lists of the book (each item once)."""
        data = self.load()
        for key, items in changes.items():
            data.setdefault(key, [])
            data[key] += [item for item in items if item not in data[key]]
        self.state.save(data)

    def clear(self) -> None:
        self.state.save({})


@dataclasses.dataclass(frozen=True)
class HealPlan:
    """What heal must undo beyond making things healthy, from the active faults and the book."""

    recreate: frozenset[str] = frozenset()
    restart_daemon: bool = False
    book: dict[str, Any] = dataclasses.field(default_factory=dict)


class LabSystem(ABC):
    """One production system rebuilt in the lab: hosts, stand-in services and a fault table."""

    def __init__(self, *, name: str, hosts: Sequence[LabHost], faults: Sequence[Fault]) -> None:
        self.name = name
        self.hosts = tuple(hosts)
        self.book = FaultBook(name)
        self._faults = [dataclasses.replace(fault, system=name) for fault in faults]

    # ---- what a system provides --------------------------------------------------------
    @abstractmethod
    def converge(self, *, plan: HealPlan | None) -> None:
        """Bring the system to healthy. `up` passes no plan and only creates what is missing;
        `heal` passes one and also restores every file and container a fault may have touched."""

    @abstractmethod
    def service_components(self) -> list[Component]:
        """The system's own status lines (containers, health, backups, ...)."""

    def forget(self) -> None:
        """What `down --purge` removes beyond the hosts' directories (machine-wide entries)."""
        return None

    # ---- the fault table ---------------------------------------------------------------
    def faults(self) -> list[Fault]:
        return list(self._faults)

    def fault(self, name: str) -> Fault:
        for fault in self._faults:
            if fault.name == name:
                return fault
        valid = ", ".join(fault.name for fault in self._faults)
        raise UsageError(f"unknown fault {name!r} for {self.name}; valid faults: {valid}")

    def active_faults(self) -> list[str]:
        return self.book.active()

    # ---- lifecycle ---------------------------------------------------------------------
    def up(self) -> None:
        """Start whatever is missing and wait until healthy; with faults active, only the hosts."""
        with lab_lock(self.name):
            active = self.active_faults()
            if active:
                for host in self.hosts:
                    host.up()
                print(
                    f"{self.name}: faults active ({', '.join(active)}): host started, "
                    "services left as they are; run `python -m lab heal` for green"
                )
                return
            self.converge(plan=None)

    def down(self, *, purge: bool = False) -> None:
        with lab_lock(self.name):
            for host in reversed(self.hosts):
                host.down()
            if purge:
                for host in self.hosts:
                    host.purge()
                self.forget()
                shutil.rmtree(lab_dir() / self.name, ignore_errors=True)

    def status(self) -> list[Component]:
        lines = []
        for host in self.hosts:
            prefix = f"{host.label}: " if len(self.hosts) > 1 else ""
            lines += [dataclasses.replace(line, name=prefix + line.name) for line in host.components()]
        lines += self.service_components()
        active = self.active_faults()
        lines.append(Component("faults", True, ", ".join(active) if active else "none active"))
        return lines

    def is_up(self) -> bool:
        return all(line.ok for line in self.status())

    def break_fault(self, name: str) -> None:
        """Inject `name` and return once it is observable; booked so status and heal know it."""
        fault = self.fault(name)
        with lab_lock(self.name):
            if not all(host.ok() for host in self.hosts):
                raise LabError(f"{self.name} is not up; run `python -m lab up` first")
            self.book.activate(name)  # before injecting: a half-done injection must still be healed
            fault.inject()

    def heal(self) -> None:
        """Back to fully green: files restored, touched containers recreated, healthy again."""
        with lab_lock(self.name):
            book = self.book.load()
            active = [fault for fault in self._faults if fault.name in book.get("active", [])]
            plan = HealPlan(
                recreate=frozenset(name for fault in active for name in fault.recreate),
                restart_daemon=any(fault.restart_daemon for fault in active),
                book=book,
            )
            for host in self.hosts:
                if isinstance(host, Host):
                    host.clear_disk()
            self.converge(plan=plan)
            self.book.clear()
