"""A systemd unit's properties as the host reports them: one `systemctl show` per run and unit.

Read by the kinds that look at a unit (systemd, env_files, journald, sqlite): the unit's
state, its `Environment=`, its working directory. Facts only; the kinds judge them.
"""

from __future__ import annotations

import shlex
from typing import Annotated

from pydantic import Field

from runbook.errors import CheckError
from runbook.host.target import Target

# A unit name as systemctl takes it; never starts with '-', so never an option.
UnitName = Annotated[str, Field(pattern=r"^[A-Za-z0-9@._:][A-Za-z0-9@._:-]*$", max_length=256)]


PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "NRestarts",
    "Result",
    "ActiveEnterTimestamp",
    "ActiveEnterTimestampMonotonic",
    "ExecMainStartTimestamp",
    "ExecMainStatus",
    "Environment",
    "WorkingDirectory",
)


def parse_show(text: str) -> dict[str, str]:
    """`Key=value` lines of `systemctl show` (a value may itself contain '=')."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value
    return found


def environment(value: str) -> dict[str, str]:
    """The `Environment=` property: space-separated `K=V`, quoted when a value has spaces."""
    try:
        words = shlex.split(value)
    except ValueError:
        words = value.split()
    return dict(word.partition("=")[::2] for word in words if "=" in word)


def read_unit(target: Target, unit: str) -> dict[str, str]:
    """The unit's properties, read once per run and host."""
    return target.cached(("systemd-show", unit), lambda: read_unit_now(target, unit))


def read_unit_now(target: Target, unit: str) -> dict[str, str]:
    """The unit's properties at this moment (a second look; not cached)."""
    result = target.run(f"systemctl show -p {','.join(PROPERTIES)} -- %s", unit)
    if result.rc != 0:
        said = result.stderr.strip()[:300] or f"exit {result.rc}"
        raise CheckError(f"systemctl show {unit}: {said}")
    return parse_show(result.stdout)
