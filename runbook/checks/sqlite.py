"""An SQLite database: its journal mode, its integrity, and that the service user can read it.

Journal mode comes from the header (bytes 18-19 are 2 for WAL, 1 for rollback): two
bytes need no sqlite3 binary on the host and cannot change the database (`PRAGMA
journal_mode` on a writable connection could). Integrity is `PRAGMA integrity_check`
through the host's sqlite3 (or python3) on an `immutable=1` read-only open: a plain
`mode=ro` open of a WAL database as root would leave root-owned -wal/-shm files the
service may then fail to open. An immutable open takes no locks, so a page read while a
checkpoint writes could look torn; a result other than `ok` is read once more before it
fails. The path may come from the unit's environment (`path_from`), `path` the default.
"""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from runbook.describe.model import CheckBase, ContainerName, HostPath, InContainer, Model
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.docker_host import Container
from runbook.host.sqlite import check_integrity
from runbook.host.systemd import UnitName, environment, read_unit
from runbook.host.target import Target


class PathFrom(Model):
    """Where the service reads its database path: its unit's environment, then its .env file."""

    variable: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)
    unit: UnitName | None = Field(default=None, description="Environment= of this systemd unit")
    env_file: HostPath | None = Field(default=None, description="a dotenv file, e.g. /opt/magic-master/.env")

    @model_validator(mode="after")
    def _somewhere(self) -> PathFrom:
        if self.unit is None and self.env_file is None:
            raise ValueError("set unit, env_file or both (the unit's environment is asked first)")
        return self


class SqliteCheck(CheckBase, InContainer):
    """An SQLite database's journal mode, read from its header (never opened for writing)."""

    kind: ClassVar[str] = "sqlite"
    group: ClassVar[str] = "config"
    default_markers: ClassVar[tuple[str, ...]] = ("daily",)

    aspects: ClassVar[tuple[str, ...]] = ("journal_mode", "integrity", "readable_by")

    path: HostPath = Field(description="the database; with path_from, the default when the unit sets none")
    path_from: PathFrom | None = Field(default=None, description="{unit: magic-master, variable: DB_PATH}")
    container: ContainerName | None = None
    journal_mode: Literal["wal", "rollback"] | None = None
    integrity: Literal[True] | None = Field(default=None, description="PRAGMA integrity_check is ok")
    readable_by: str | None = Field(
        default=None, pattern=r"^[a-z_][a-z0-9_.-]*\$?$", max_length=32, description="the service user"
    )

    @model_validator(mode="before")
    @classmethod
    def _wal_by_default(cls, data: Any) -> Any:
        """A check naming no aspect is the journal mode check it always was (wal)."""
        if isinstance(data, dict) and not any(data.get(name) is not None for name in cls.aspects):
            return {**data, "journal_mode": "wal"}
        return data

    @model_validator(mode="after")
    def _on_the_host(self) -> SqliteCheck:
        if self.container_ref is not None and (self.path_from or self.aspect != "journal_mode"):
            raise ValueError(
                "integrity, readable_by and path_from check a file on the host: drop container/service"
            )
        return self


MODES = {(2, 2): "wal", (1, 1): "rollback"}


def verify(check: SqliteCheck, target: Target) -> None:
    if check.integrity is not None:
        check_integrity(database_path(check, target), target)
        return
    if check.readable_by is not None:
        _readable(database_path(check, target), check.readable_by, target)
        return
    ref = check.container_ref
    for container in docker_host.containers(target, ref) if ref else [None]:
        _verify_one(check, target, container)


def _verify_one(check: SqliteCheck, target: Target, container: Container | None) -> None:
    path = check.path if container else database_path(check, target)
    read = "od -An -tu1 -j18 -N2 -- %s"
    result = docker_host.exec_in(target, container, read, path) if container else target.run(read, path)
    numbers = tuple(int(value) for value in result.stdout.split())
    where = f" in {container}" if container else ""
    if result.rc != 0 or len(numbers) != 2:
        raise CheckError(f"cannot read the header of {path}{where}: {result.stderr.strip()[:300]}")
    mode = MODES.get(numbers, f"unknown (header bytes {numbers[0]},{numbers[1]})")  # type: ignore[arg-type]
    if mode != check.journal_mode:
        raise CheckFailed(
            f"{path} in {check.journal_mode} journal mode",
            f"journal mode {mode} != {check.journal_mode} "
            f"(header bytes 18-19: {numbers[0]},{numbers[1]}){where}",
        )


def database_path(check: SqliteCheck, target: Target) -> str:
    """The path the service uses: its unit's variable, else its .env's, else `path` (the default)."""
    source = check.path_from
    if source is None:
        return check.path
    value, where, folder = "", "", "/"
    if source.unit is not None:
        props = read_unit(target, source.unit)
        value = environment(props.get("Environment", "")).get(source.variable, "")
        where, folder = f"unit {source.unit}", props.get("WorkingDirectory") or "/"
    if not value and source.env_file is not None:
        value, where = env_file_value(target, source.env_file, source.variable), source.env_file
        folder = folder if source.unit is not None else posixpath.dirname(source.env_file)
    if not value:
        return check.path
    if value.startswith("sqlite:///"):
        value = posixpath.normpath(posixpath.join(folder, value.removeprefix("sqlite:///")))
    if not value.startswith("/") or "\0" in value or "\n" in value:
        raise CheckError(f"{where}: {source.variable}={value!r} is not an absolute path or sqlite:/// URL")
    return value


# Prints the key's last value only if it looks like a path or an SQLite URL: a .env's other
# values are secrets and never leave the host (as in env_files).
ENV_FILE_PATH = r"""
{
  line = $0
  sub(/^[ \t]*export[ \t]+/, "", line)
  if (line ~ /^[ \t]*#/ || index(line, "=") == 0) next
  k = substr(line, 1, index(line, "=") - 1)
  gsub(/[ \t]/, "", k)
  if (k != key) next
  v = substr(line, index(line, "=") + 1)
  gsub(/^[ \t]+|[ \t\r]+$/, "", v)
  q = substr(v, 1, 1)
  if (length(v) >= 2 && (q == "\"" || q == "'") && substr(v, length(v), 1) == q)
    v = substr(v, 2, length(v) - 2)
  value = v
}
END { if (value ~ /^(\/|sqlite:\/\/\/)/) print value; else if (value != "") print "(set, not a path)" }
"""


def env_file_value(target: Target, env_file: str, variable: str) -> str:
    """The variable's value in the dotenv file if it is a path; '' if the file or key is missing."""
    result = target.run(
        "[ -f %s ] || exit 0; awk -v key=%s -- %s %s", env_file, variable, ENV_FILE_PATH, env_file
    )
    if result.rc != 0:
        raise CheckError(f"cannot read {env_file}: {result.stderr.strip()[:300] or f'exit {result.rc}'}")
    return result.stdout.strip()


# One word: readable, unreadable, missing (no file), no-user, not-root (cannot test as another user).
READABLE = (
    'u=%s; p=%s; [ -e "$p" ] || { echo missing; exit 0; }; id -u -- "$u" >/dev/null 2>&1 || '
    '{ echo no-user; exit 0; }; if [ "$(id -un)" = "$u" ]; then t="test -r"; elif [ "$(id -u)" = 0 ]; '
    'then t="runuser -u $u -- test -r"; else echo not-root; exit 0; fi; '
    'if $t "$p"; then echo readable; else echo unreadable; fi; stat -L -c "%%U:%%G %%a" -- "$p"'
)


def _readable(path: str, user: str, target: Target) -> None:
    result = target.run(READABLE, user, path)
    word, _, owner = result.stdout.strip().partition("\n")
    expected = f"{path} readable by {user}"
    if word == "readable":
        return
    if word == "unreadable":
        raise CheckFailed(expected, f"{path} ({owner.strip()}) is not readable by {user}")
    if word == "missing":
        raise CheckFailed(expected, f"{path} does not exist")
    if word == "no-user":
        raise CheckFailed(expected, f"no user {user} on the host")
    if word == "not-root":
        raise CheckError(f"testing {path} as {user} needs root (ssh as root, or ?sudo=true)")
    raise CheckError(f"cannot test {path} as {user}: {result.stderr.strip()[:300] or f'exit {result.rc}'}")
