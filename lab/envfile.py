"""Env files: a system's fake per-lab secrets, the `.env` files laid on its hosts, and lab.env.

Each system names its secrets and how to make each one (`lab_secrets`); they are generated once
and kept in its state dir as `secrets.json` (a flat JSON object), so `up` and `heal` lay the same
values again. `render_env` joins a system's lines into a file; `parse_env` reads one back the way
docker compose's `env_file` does (`KEY=value` lines, comments and blanks skipped). The runner's
environment gets the secrets the descriptions read (`${...}`) through lab.env (`publish`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from lab.core import JsonState, lab_dir, upsert_env_line
from lab.system import state_dir


def lab_secrets(system: str, wanted: Mapping[str, Callable[[], str]]) -> dict[str, str]:
    """The system's secrets: those in `wanted` that are missing are made and saved, once."""
    store = JsonState(state_dir(system) / "secrets.json")
    data = store.load()
    missing = {key: make() for key, make in wanted.items() if not data.get(key)}
    if missing:
        data.update(missing)
        store.save(data)
    return data


def render_env(lines: Iterable[str], drop: Iterable[str] = ()) -> str:
    """An env file of `lines`, without the keys in `drop` (a fault's file missing a setting)."""
    dropped = set(drop)
    return "\n".join(line for line in lines if line.split("=", 1)[0] not in dropped) + "\n"


def parse_env(path: Path) -> dict[str, str]:
    """`KEY=value` lines of an env file ({} when it is missing); comments and blanks skipped."""
    values: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value
    return values


def lab_env() -> Path:
    """The runner's env file (/var/lib/runbook-lab/lab.env): the secrets descriptions read."""
    return lab_dir() / "lab.env"


def publish(values: Mapping[str, str]) -> None:
    """Set `VARIABLE=value` lines of lab.env, keeping the others."""
    for variable, value in values.items():
        upsert_env_line(lab_env(), variable, value)


def unpublish(variables: Iterable[str]) -> None:
    """Drop these variables from lab.env (`down --purge` of the system)."""
    for variable in variables:
        upsert_env_line(lab_env(), variable, None)
