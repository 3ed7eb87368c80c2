"""Lab system `ai-calendar-assistant`: the runbook's server, its lifecycle and its faults.

This module is what the registry loads; every system module exposes the same functions.
"""

from __future__ import annotations

from lab.calendar import system
from lab.calendar.faults import FAULTS
from lab.core import Component, Fault, LabError, UsageError, lab_lock

NAME = system.NAME
HOST = system.HOST


def faults() -> list[Fault]:
    return list(FAULTS)


def fault(name: str) -> Fault:
    for f in FAULTS:
        if f.name == name:
            return f
    valid = ", ".join(f.name for f in FAULTS)
    raise UsageError(f"unknown fault {name!r} for {NAME}; valid faults: {valid}")


def active_faults() -> list[str]:
    return list(system.fault_state().load().get("active", []))


def up() -> None:
    """Start whatever is missing and wait until healthy; with faults active, only the host."""
    with lab_lock():
        active = active_faults()
        if active:
            system.HOST.up()
            print(
                f"{NAME}: faults active ({', '.join(active)}): host started, "
                "services left as they are; run `python -m lab heal` for green"
            )
            return
        system.converge(strict=False)


def down(purge: bool = False) -> None:
    with lab_lock():
        system.teardown(purge=purge)


def status() -> list[Component]:
    return system.components()


def is_up() -> bool:
    return all(c.ok for c in status())


def break_fault(name: str) -> None:
    """Inject `name` and return once it is observable; recorded so status and heal know it."""
    f = fault(name)
    with lab_lock():
        if not (system.HOST.docker_ok() and system.HOST.sshd_ok()):
            raise LabError(f"{NAME} is not up; run `python -m lab up` first")
        state = system.fault_state()
        data = state.load()
        if name not in data.get("active", []):
            data["active"] = [*data.get("active", []), name]
            state.save(data)  # before injecting: a half-done injection must still be healed
        f.inject()


def heal() -> None:
    """Back to fully green: files restored, touched containers recreated, healthy again."""
    with lab_lock():
        state = system.fault_state()
        book = state.load()
        active = [f for f in FAULTS if f.name in book.get("active", [])]
        recreate: set[str] = set()
        for f in active:
            recreate |= f.recreate
        system.converge(
            strict=True, recreate=recreate, restart_daemon=any(f.restart_daemon for f in active), book=book
        )
        state.save({})
