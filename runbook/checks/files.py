"""A file or folder on the host: it exists, of the right type, owner and mode (`stat`).

The runbooks' "the database file exists and the service user can read it",
"the backup folder exists". Read with `stat`, nothing opened.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from runbook.describe.model import CheckBase, HostPath
from runbook.errors import CheckError, CheckFailed
from runbook.host.target import Target

TYPES = {
    "regular file": "file",
    "regular empty file": "file",
    "directory": "directory",
    "symbolic link": "link",
}


class FileCheck(CheckBase):
    """A path exists as a file or directory, optionally with an owner and a mode."""

    kind: ClassVar[str] = "files"
    group: ClassVar[str] = "config"

    path: HostPath
    type: Literal["file", "directory"] = "file"
    owner: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_.-]*$")
    mode: str | None = Field(default=None, pattern=r"^[0-7]{3,4}$", description="octal, e.g. '640'")


def verify(check: FileCheck, target: Target) -> None:
    result = target.run("stat -L -c '%%F|%%U|%%a' -- %s", check.path)
    if result.rc != 0:
        said = result.stderr.strip()
        if "No such file" in said:
            raise CheckFailed(f"{check.path} exists ({check.type})", f"{check.path} does not exist")
        raise CheckError(f"stat {check.path}: {said[:300] or f'exit {result.rc}'}")
    kind, owner, mode = [*result.stdout.strip().split("|"), "", "", ""][:3]
    found_type = TYPES.get(kind, kind)
    if found_type != check.type:
        raise CheckFailed(
            f"{check.path} is a {check.type}", f"{check.path} is a {found_type}, not a {check.type}"
        )
    if check.owner is not None and owner != check.owner:
        raise CheckFailed(
            f"{check.path} owned by {check.owner}", f"{check.path} owned by {owner} != {check.owner}"
        )
    if check.mode is not None and int(mode, 8) != int(check.mode, 8):
        raise CheckFailed(f"{check.path} mode {check.mode}", f"{check.path} mode {mode} != {check.mode}")
