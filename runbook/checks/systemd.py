"""A systemd unit (Magic Master runbook § 4: `systemctl status magic-master`).

Everything is read with one `systemctl show -p ... -- UNIT` per run and host (cached), so
the aspects of one unit (active, enabled, restarts, uptime, a program on its PATH) cost one
round trip. `NRestarts` counts the restarts systemd made by `Restart=` since the unit was
last started by hand; `activating (auto-restart)` is a unit between two such restarts.
A restart since the last run is not a failure but information the runbook cares about
("in-memory mastering jobs are lost"): the start time is kept in the suite's state store
(runbook.host.samples) and a changed one passes with the runbook's note (CheckPassed).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field

from runbook.describe.model import CheckBase
from runbook.errors import CheckError, CheckFailed, CheckPassed
from runbook.host.samples import STORE, Snapshot
from runbook.host.systemd import UnitName, environment, parse_show, read_unit, read_unit_now
from runbook.host.target import Target

# A program looked up on a PATH: a plain file name.
ProgramName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$", max_length=255)]

ENABLED = {"enabled", "enabled-runtime", "linked", "linked-runtime", "alias"}
# systemd's own PATH for services when neither the unit nor the manager sets one.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The SampleStore keeps the newest snapshot older than this and every later one: the last run's.
PREVIOUS_RUN = 1e-3


class SystemdCheck(CheckBase):
    """One fact of a systemd unit: active, enabled, not restarting, its uptime, a program it needs."""

    kind: ClassVar[str] = "systemd"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")
    aspects: ClassVar[tuple[str, ...]] = (
        "active",
        "enabled",
        "max_restarts",
        "uptime_note",
        "program_on_path",
    )

    unit: UnitName = Field(description="magic-master (or magic-master.service)")
    active: bool | None = Field(default=None, description="true: ActiveState active; false: not running")
    enabled: bool | None = Field(default=None, description="true: starts at boot (UnitFileState enabled)")
    max_restarts: int | None = Field(
        default=None, ge=0, le=1_000_000, description="NRestarts at most this, and not in auto-restart"
    )
    uptime_note: str | None = Field(
        default=None, min_length=1, description="said (passing) when the unit restarted since the last run"
    )
    program_on_path: ProgramName | None = Field(
        default=None, description="ffmpeg: found on the unit's PATH (its Environment=PATH, else systemd's)"
    )


def verify(check: SystemdCheck, target: Target) -> None:
    props = read_unit(target, check.unit)
    name = props.get("Id") or check.unit
    if props.get("LoadState") == "not-found":
        raise CheckFailed(f"unit {check.unit} installed", f"no unit {check.unit} (LoadState=not-found)")
    if check.active is not None:
        _active(check.active, name, props)
        if check.active and int(props.get("NRestarts") or 0) > 0:
            _still_active(name, props, target, check.unit)
    elif check.enabled is not None:
        _enabled(check.enabled, name, props)
    elif check.max_restarts is not None:
        _restarts(check.max_restarts, name, props)
    elif check.uptime_note is not None:
        _uptime(check.uptime_note, name, props, source=f"systemd:{target.name}:{target.display}:{name}")
    elif check.program_on_path is not None:
        _program(check.program_on_path, name, props, target)


def state(props: Mapping[str, str]) -> str:
    """'active (running)', 'activating (auto-restart)', 'failed (failed)'."""
    return f"{props.get('ActiveState', '?')} ({props.get('SubState', '?')})"


def _active(wanted: bool, name: str, props: Mapping[str, str]) -> None:
    running = props.get("ActiveState") == "active"
    if running == wanted:
        return
    raise CheckFailed(f"{name} {'active' if wanted else 'not running'}", f"{name} is {_how(props)}")


def _how(props: Mapping[str, str]) -> str:
    """'activating (auto-restart), result exit-code (exit status 2)': the state, and why when not active."""
    how = state(props)
    if props.get("ActiveState") != "active" and props.get("Result") not in (None, "", "success"):
        how += f", result {props['Result']} (exit status {props.get('ExecMainStatus', '?')})"
    return how


# Seconds between the two looks at a unit systemd has restarted: a unit in a crash loop is
# `active (running)` for the moment its process lives, then `activating (auto-restart)`.
SECOND_LOOK = 2.0


def _still_active(name: str, first: Mapping[str, str], target: Target, unit: str) -> None:
    """A unit that systemd has restarted (NRestarts > 0) and is active now is looked at again: a
    crash loop caught in its moment of `active (running)` is not active (seen on the lab: a bad
    setting, Restart=always, the status check green by luck)."""
    time.sleep(SECOND_LOOK)
    second = read_unit_now(target, unit)
    entered = first.get("ActiveEnterTimestampMonotonic"), second.get("ActiveEnterTimestampMonotonic")
    by_hand = int(second.get("NRestarts") or 0) < int(first.get("NRestarts") or 0)  # a start resets it
    if second.get("ActiveState") == "active" and (entered[0] == entered[1] or by_hand):
        return
    raise CheckFailed(
        f"{name} active",
        f"{name} is restarting in a loop: {state(first)}, {SECOND_LOOK:g} s later {_how(second)} "
        f"(NRestarts {first.get('NRestarts', '?')} -> {second.get('NRestarts', '?')})",
    )


def _enabled(wanted: bool, name: str, props: Mapping[str, str]) -> None:
    file_state = props.get("UnitFileState") or "unknown"
    if (file_state in ENABLED) == wanted:
        return
    raise CheckFailed(
        f"{name} {'enabled (starts at boot)' if wanted else 'not enabled'}",
        f"{name} is {file_state} (UnitFileState)",
    )


def _restarts(limit: int, name: str, props: Mapping[str, str]) -> None:
    restarts = int(props.get("NRestarts") or 0)
    looping = props.get("ActiveState") == "activating" and props.get("SubState") == "auto-restart"
    expected = f"{name} restarted by systemd at most {limit} times, not in a restart loop"
    if looping:
        raise CheckFailed(
            expected,
            f"{name} is restarting in a loop: {state(props)}, NRestarts={restarts}, "
            f"last exit status {props.get('ExecMainStatus', '?')}",
        )
    if restarts > limit:
        raise CheckFailed(
            expected, f"{name} restarted {restarts} times > {limit} (NRestarts, now {state(props)})"
        )


def _uptime(note: str, name: str, props: Mapping[str, str], *, source: str) -> None:
    if props.get("ActiveState") != "active":
        raise CheckPassed(f"{name} is {state(props)}: no uptime to compare")
    started = float(props.get("ActiveEnterTimestampMonotonic") or 0)
    since = props.get("ActiveEnterTimestamp") or "?"
    if STORE.folder is None:
        raise CheckPassed(f"{name} up since {since}; no state folder to compare with the last run")
    snapshot = Snapshot(time.time(), {"started_monotonic_us": started})
    history = STORE.record(source, snapshot, PREVIOUS_RUN)
    if len(history) < 2:
        raise CheckPassed(f"{name} up since {since}: baseline recorded")
    before = history[-2].values.get("started_monotonic_us")
    if before is not None and before != started:
        raise CheckPassed(
            f"{name} restarted since the last run (up since {since}, "
            f"NRestarts={props.get('NRestarts', '?')}): {note}"
        )


def service_path(props: Mapping[str, str], target: Target) -> tuple[str, str]:
    """The PATH the unit's processes get, and where it comes from."""
    own = environment(props.get("Environment", "")).get("PATH")
    if own:
        return own, "the unit's Environment=PATH"
    result = target.run("systemctl show -p Environment")
    manager = environment(parse_show(result.stdout).get("Environment", "")).get("PATH")
    if result.rc == 0 and manager:
        return manager, "systemd's own PATH"
    return DEFAULT_PATH, "systemd's default PATH"


def _program(program: str, name: str, props: Mapping[str, str], target: Target) -> None:
    path, origin = service_path(props, target)
    # /bin/sh by its path: the unit's PATH need not hold a shell.
    result = target.run("env PATH=%s /bin/sh -c 'command -v \"$1\"' _ %s", path, program)
    if result.rc == 0 and result.stdout.strip():
        return
    if result.rc not in (0, 1, 127):
        raise CheckError(
            f"looking for {program} on {path}: {result.stderr.strip()[:300] or f'exit {result.rc}'}"
        )
    raise CheckFailed(f"{program} on the PATH of {name}", f"{program} not found on {path} ({origin})")
