"""A JSON config that lists users (xray's clients): where the list is, and the names in it.

Shared by the kinds that read such a file (config_users: the list itself; vless_probe: a
user to connect as). Read on the host or inside a container, parsed on the runner.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from runbook.describe.model import ContainerName, HostPath, Model
from runbook.errors import CheckFailed
from runbook.host.target import Target

Names = list[str]


class UsersFile(Model):
    """Where a JSON config lists its users; shared by config_users and vless_probe."""

    file: HostPath
    container: ContainerName | None = Field(default=None, description="read the file inside this container")
    users_at: str = Field(
        default="inbounds[*].settings.clients",
        pattern=r"^[A-Za-z0-9_-]+(\[\*\])?(\.[A-Za-z0-9_-]+(\[\*\])?)*$",
        description="where the user entries are: keys joined by '.', '[*]' for every item of a list",
    )
    name_keys: list[str] = Field(
        default=["email", "name"], min_length=1, description="first one present names a user"
    )


def read(target: Target, file: str, container: str | None = None) -> str:
    """The file as it is on disk: on the host, or inside the container.

    Inside a container it is copied out (`docker cp`, a tar stream unpacked to stdout), not
    read with `docker exec`: that works while the container is restarting or stopped, when
    a config that keeps xray from starting is the very thing to read.
    """
    if container:
        result = target.run("docker cp -L %s - | tar -xOf -", f"{container}:{file}")
    else:
        result = target.run("cat -- %s", file)
    if result.rc != 0:
        said = result.stderr.strip()[:300] or f"exit {result.rc}"
        raise CheckFailed(f"{file} readable", f"cannot read {file} on {target.name}: {said}")
    return result.stdout


def parse(target: Target, file: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckFailed(
            f"{file} is valid JSON",
            f"{file} on {target.name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        ) from None
    except RecursionError:
        raise CheckFailed(
            f"{file} is valid JSON", f"{file} on {target.name} is nested too deeply to read"
        ) from None


def entries(document: Any, users_at: str) -> list[dict[str, Any]]:
    """The user entries at `users_at` (keys joined by '.', '[*]' for every item of a list)."""
    nodes = [document]
    for part in users_at.split("."):
        key = part.removesuffix("[*]")
        nodes = [node.get(key) for node in nodes if isinstance(node, dict)]
        if part.endswith("[*]"):
            nodes = [item for node in nodes if isinstance(node, list) for item in node]
    flat = [item for node in nodes for item in (node if isinstance(node, list) else [node])]
    return [item for item in flat if isinstance(item, dict)]


def names(where: UsersFile, document: Any) -> Names:
    """The user names, in file order."""
    found = (name_of(where.name_keys, entry) for entry in entries(document, where.users_at))
    return [name for name in found if name is not None]


def name_of(keys: list[str], entry: dict[str, Any]) -> str | None:
    """The first of `keys` that holds a string names the user."""
    for key in keys:
        if isinstance(entry.get(key), str):
            return str(entry[key])
    return None
