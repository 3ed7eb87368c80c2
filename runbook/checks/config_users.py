"""The users (clients) a JSON config lists: valid JSON, no two alike, a user present, replicas in sync.

The VPN runbook's xray `config.json`: a hand edit that breaks the JSON, or adds `Test1` beside
`test1` (xray compares names ignoring case and stops with `User Test1 already exists`), puts
xray into a restart loop; users are added only on the master, so every replica's list must
equal the master's. The file is read as it is on disk (`cat`, on the host or in a container),
so a broken config is seen even while xray is down.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints, field_validator

from runbook.describe.model import CheckBase, ContainerName, HostPath, Model
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.target import Target

Names = list[str]
# One argv element of test_command: no NUL or newline; the first is the program, never an option.
Argument = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00\n]+$")]


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


class ConfigUsersCheck(CheckBase, UsersFile):
    """One fact about the user list of a JSON config file."""

    kind: ClassVar[str] = "config_users"
    group: ClassVar[str] = "config"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")
    aspects: ClassVar[tuple[str, ...]] = (
        "valid_json",
        "unique_names",
        "has_user",
        "same_users_as",
        "test_command",
    )

    valid_json: bool | None = Field(default=None, description="true: the file parses as JSON")
    unique_names: bool | None = Field(
        default=None, description="true: no two users named alike ignoring case"
    )
    has_user: str | None = Field(
        default=None, min_length=1, description="this user is listed (e.g. '{user}')"
    )
    same_users_as: str | None = Field(
        default=None, description="host whose list this one must equal (the master)"
    )
    test_command: list[Argument] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="the program's own config test as argv, the file appended as its last argument "
        "(e.g. [xray, run, -test, -config] or [v2ray, -test, -config]); must exit 0",
    )
    test_timeout: float = Field(default=20.0, gt=0, le=120, description="deadline of test_command")

    @field_validator("test_command")
    @classmethod
    def _program_first(cls, argv: list[str] | None) -> list[str] | None:
        if argv and argv[0].startswith("-"):
            raise ValueError(f"{argv[0]!r}: the first element is the program, not an option")
        return argv


def verify(check: ConfigUsersCheck, target: Target) -> None:
    if check.test_command:
        _config_test(check, target, check.test_command)
        return
    text = read(target, check.file, check.container)
    if check.valid_json:
        parse(target, check.file, text)
        return
    users = names(check, parse(target, check.file, text))
    if check.unique_names:
        _unique(check, users)
    elif check.has_user is not None:
        if check.has_user not in users:
            shown = ", ".join(users[:20]) or "none"
            raise CheckFailed(
                f"user {check.has_user} in {check.file}",
                f"user {check.has_user} missing from {check.file} on {target.name} "
                f"({len(users)} users: {shown})",
            )
    elif check.same_users_as is not None:
        _same(check, target, users)


def read(target: Target, file: str, container: str | None = None) -> str:
    """The file as it is on disk: on the host, or inside the container."""
    if container:
        result = docker_host.exec_in(target, container, "cat -- %s", file)
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


def _unique(check: ConfigUsersCheck, users: Names) -> None:
    seen: dict[str, list[str]] = {}
    for name in users:
        seen.setdefault(name.lower(), []).append(name)
    alike = [spellings for spellings in seen.values() if len(spellings) > 1]
    if alike:
        shown = "; ".join(" and ".join(repr(name) for name in spellings) for spellings in alike)
        raise CheckFailed(
            "no two users named alike ignoring case",
            f"{len(alike)} name(s) used twice ignoring case in {check.file}: {shown} "
            f"(xray stops with: User {alike[0][-1]} already exists)",
        )


def _same(check: ConfigUsersCheck, target: Target, users: Names) -> None:
    assert check.same_users_as is not None
    if check.same_users_as == target.name:
        return  # the reference host equals itself
    reference = target.peer(check.same_users_as)
    try:
        theirs = names(check, parse(reference, check.file, read(reference, check.file, check.container)))
    except CheckFailed as failed:
        raise CheckFailed(
            f"the same users as {check.same_users_as}",
            f"cannot compare with {check.same_users_as}: {failed.found}",
        ) from None
    except CheckError as exc:
        raise CheckError(f"cannot compare with {check.same_users_as}: {exc}") from None
    missing = [name for name in theirs if name not in users]
    extra = [name for name in users if name not in theirs]
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"extra {', '.join(extra)}"] if extra else []
        raise CheckFailed(
            f"the same users as {check.same_users_as} ({len(theirs)})",
            f"{target.name} differs from {check.same_users_as}: {'; '.join(parts)}",
        )


def _config_test(check: ConfigUsersCheck, target: Target, argv: list[str]) -> None:
    """The runbook's `run -test` before a restart: argv quoted word by word, the file last."""
    words = [*argv, check.file]
    template = " ".join(["%s"] * len(words)) + " 2>&1"
    if check.container:
        result = docker_host.exec_in(target, check.container, template, *words, timeout=check.test_timeout)
    else:
        result = target.run(template, *words, timeout=check.test_timeout)
    shown = " ".join(words)
    if result.rc != 0:
        said = result.stdout.strip()[-600:] or "no output"
        raise CheckFailed(
            f"`{shown}` exits 0 (the config passes its test)",
            f"`{shown}` on {target.name} exit {result.rc}: {said}",
            {"command": shown, "output": result.stdout[-4000:]},
        )
