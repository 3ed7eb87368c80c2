"""The users (clients) a JSON config lists: valid JSON, no two alike, a user present, replicas in sync.

The VPN runbook's xray `config.json`: a hand edit that breaks the JSON, or adds `Test1` beside
`test1` (xray compares names ignoring case and stops with `User Test1 already exists`), puts
xray into a restart loop; users are added only on the master, so every replica's list must
equal the master's. The file is read as it is on disk (`cat`, on the host or in a container),
so a broken config is seen even while xray is down.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints, field_validator

from runbook.describe.model import CheckBase
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.target import Target
from runbook.host.users_file import Names, UsersFile, names, parse, read

# One argv element of test_command: no NUL or newline; the first is the program, never an option.
Argument = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00\n]+$")]


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
