"""The system description schema: what one YAML file under systems/ may say.

A description names a system, its runbook, its hosts (testinfra host specs) and
its checks grouped by kind. Every check carries what every report needs: an id,
a title, a severity (P1-P4, the calendar runbook's table), the markers it runs
under, the runbook section it comes from and the runbook's own remedy.

Each kind's model says exactly which facts it checks; a check asserts one thing
(the fields of one "aspect"), so that one runbook failure fails the checks that
describe it and nothing else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["P1", "P2", "P3", "P4"]
Marker = Literal["daily", "smoke", "incident"]
MARKERS: tuple[str, ...] = ("daily", "smoke", "incident")

CheckId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)]

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str | int) -> int:
    """Bytes from '1G', '512m', '1000' (docker's binary units)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 1000, 512M, 1G)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def parse_duration(text: str | int | float) -> float:
    """Seconds from '24h', '30m', '90s', '2d' or a plain number of seconds."""
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 24h, 2d)")
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * factor


def _regex(value: str) -> str:
    """The value if it compiles; pydantic reports only ValueError, and re.error is not one."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {value!r} ({exc})") from None
    return value


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckBase(Model):
    """Fields every check has, whatever its kind."""

    kind: ClassVar[str] = ""
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "incident")
    # Aspect fields: exactly one must be set on a check of a kind that has them.
    aspects: ClassVar[tuple[str, ...]] = ()

    id: CheckId
    title: str = Field(min_length=3)
    severity: Severity
    section: str = Field(min_length=1, description="runbook section the check comes from")
    remedy: str = Field(min_length=1, description="the runbook's 'what to do', quoted")
    markers: list[Marker] | None = None
    host: str | None = Field(default=None, description="host name from `hosts`; default: the first")
    description: str | None = None
    requires_feature: str | None = Field(
        default=None, description="skip unless the system declares this feature (e.g. monitoring)"
    )

    @model_validator(mode="after")
    def _one_aspect(self) -> CheckBase:
        if self.aspects:
            given = [name for name in self.aspects if getattr(self, name) is not None]
            if len(given) != 1:
                names = ", ".join(self.aspects)
                found = ", ".join(given) or "none"
                raise ValueError(f"set exactly one of: {names} (found: {found})")
        return self

    @property
    def effective_markers(self) -> tuple[str, ...]:
        return tuple(self.markers) if self.markers is not None else self.default_markers

    @property
    def aspect(self) -> str:
        """The single fact this check asserts (for kinds with aspects)."""
        for name in self.aspects:
            if getattr(self, name) is not None:
                return name
        return self.kind


class ContainerCheck(CheckBase):
    """One fact about one container: `docker inspect`, `docker events`, `docker stats`."""

    kind: ClassVar[str] = "containers"
    aspects: ClassVar[tuple[str, ...]] = (
        "state",
        "restart_policy",
        "memory_limit",
        "no_crash_within",
        "max_restarts",
        "max_memory_percent",
    )

    container: str
    state: Literal["running"] | None = None
    restart_policy: str | None = None
    memory_limit: str | None = Field(default=None, description="'set' or a size such as 1G")
    no_crash_within: str | None = Field(
        default=None, description="window such as 24h: no OOM kill, no exit 137/139"
    )
    max_restarts: int | None = Field(default=None, ge=0)
    within: str = "24h"
    max_memory_percent: float | None = Field(default=None, gt=0, le=100)
    crash_exit_codes: list[int] = [137, 139]

    @field_validator("memory_limit")
    @classmethod
    def _limit(cls, value: str | None) -> str | None:
        if value is not None and value != "set":
            parse_size(value)
        return value

    @field_validator("no_crash_within", "within")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class InstancesCheck(CheckBase):
    """How many containers match a `docker ps` filter (e.g. only one bot instance)."""

    kind: ClassVar[str] = "instances"

    filters: dict[str, str] = Field(min_length=1, description="docker ps --filter KEY=VALUE")
    count: int = Field(ge=0)


class HttpCheck(CheckBase):
    """An HTTP endpoint: status, JSON fields, answer time."""

    kind: ClassVar[str] = "http"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")

    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    via: Literal["runner", "host"] = Field(
        default="runner", description="runner: from this machine (httpx); host: curl on the host"
    )
    container: str | None = Field(default=None, description="curl inside this container")
    timeout: float = Field(default=5.0, gt=0, le=120)
    expect_status: list[int] = [200]
    expect_json: dict[str, Any] | None = None
    expect_keys: list[str] = []
    headers: dict[str, str] = {}
    verify_tls: bool = True

    @model_validator(mode="after")
    def _where(self) -> HttpCheck:
        if self.container and self.via == "runner":
            object.__setattr__(self, "via", "host")
        return self


class ResourceCheck(CheckBase):
    """Disk usage of a path, or the host's available memory."""

    kind: ClassVar[str] = "resources"
    aspects: ClassVar[tuple[str, ...]] = ("disk", "min_available_mb")

    disk: str | None = Field(default=None, description="path whose filesystem is checked")
    max_used_percent: float = Field(default=90, gt=0, le=100)
    min_available_mb: float | None = Field(default=None, gt=0)


class LogCheck(CheckBase):
    """Lines of a container's log: a pattern that must stay rare, or must appear."""

    kind: ClassVar[str] = "logs"
    aspects: ClassVar[tuple[str, ...]] = ("max_matches", "must_match")

    container: str
    pattern: str = Field(min_length=1, description="extended regex, matched case-insensitively")
    since: str | None = "24h"
    max_matches: int | None = Field(default=None, ge=0)
    must_match: bool | None = None
    show_lines: int = Field(default=20, ge=0, le=200)

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        return _regex(value)

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class CommandCheck(CheckBase):
    """A read-only command on the host and what it must print (e.g. redis-cli ping)."""

    kind: ClassVar[str] = "commands"

    run: str = Field(min_length=1)
    timeout: float = Field(default=10.0, gt=0, le=600)
    expect_exit: int | None = 0
    expect_stdout: str | None = Field(default=None, description="exact stdout, stripped")
    stdout_contains: str | None = None


class TcpCheck(CheckBase):
    """A TCP connection, from the runner or from inside a container (by service name)."""

    kind: ClassVar[str] = "tcp"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")

    address: str = Field(min_length=1, description="host name or IP to connect to")
    port: int = Field(gt=0, lt=65536)
    from_container: str | None = None
    timeout: float = Field(default=3.0, gt=0, le=60)


class BackupCheck(CheckBase):
    """The newest archive in a backup folder: age, size, integrity; and retention."""

    kind: ClassVar[str] = "backups"
    default_markers: ClassVar[tuple[str, ...]] = ("daily",)
    aspects: ClassVar[tuple[str, ...]] = (
        "max_age_hours",
        "min_bytes",
        "integrity",
        "retention_days",
    )

    directory: str
    pattern: str = "*.tar.gz*"
    max_age_hours: float | None = Field(default=None, gt=0)
    min_bytes: int | None = Field(default=None, ge=0)
    integrity: bool | None = None
    gpg_passphrase: str | None = Field(default=None, description="write ${ENV_NAME}, never a value")
    required_members: list[str] = Field(default=[], description="glob patterns every archive must contain")
    retention_days: float | None = Field(default=None, gt=0)
    retention_slack_days: float = Field(default=1, ge=0)
    timeout: float = Field(default=120, gt=0, le=3600)


class CronCheck(CheckBase):
    """A crontab entry: schedule and command (`crontab -l`)."""

    kind: ClassVar[str] = "cron"
    default_markers: ClassVar[tuple[str, ...]] = ("daily",)

    schedule: str = Field(pattern=r"^(@\w+|(\S+\s+){4}\S+)$")
    command_contains: str = Field(min_length=1)
    user: str | None = Field(default=None, description="crontab -u USER; default the SSH user")


class SqliteCheck(CheckBase):
    """An SQLite database's journal mode, read from its header (never opened for writing)."""

    kind: ClassVar[str] = "sqlite"
    default_markers: ClassVar[tuple[str, ...]] = ("daily",)

    path: str
    container: str | None = None
    journal_mode: Literal["wal", "rollback"] = "wal"


DEFAULT_PLACEHOLDERS = r"^(changeme|change_me|change-me|your[_-].*|xxx+|\.\.\.|<.*>|todo|tbd|placeholder|example.*|dummy|none|null|secret|token|\*+)$"  # noqa: E501


class EnvFileCheck(CheckBase):
    """A dotenv file defines keys with real values. Values never leave the host."""

    kind: ClassVar[str] = "env_files"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke")

    path: str
    required: list[str] = Field(min_length=1)
    placeholder_pattern: str = DEFAULT_PLACEHOLDERS
    container: str | None = None

    @field_validator("placeholder_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        return _regex(value)


CHECK_KINDS: dict[str, type[CheckBase]] = {
    model.kind: model
    for model in (
        ContainerCheck,
        InstancesCheck,
        HttpCheck,
        ResourceCheck,
        LogCheck,
        CommandCheck,
        TcpCheck,
        BackupCheck,
        CronCheck,
        SqliteCheck,
        EnvFileCheck,
    )
}


class Checks(Model):
    """Checks grouped by kind; each group is a list of that kind's checks."""

    containers: list[ContainerCheck] = []
    instances: list[InstancesCheck] = []
    http: list[HttpCheck] = []
    resources: list[ResourceCheck] = []
    logs: list[LogCheck] = []
    commands: list[CommandCheck] = []
    tcp: list[TcpCheck] = []
    backups: list[BackupCheck] = []
    cron: list[CronCheck] = []
    sqlite: list[SqliteCheck] = []
    env_files: list[EnvFileCheck] = []

    def all(self) -> list[CheckBase]:
        return [check for kind in CHECK_KINDS for check in getattr(self, kind)]


class System(Model):
    """One system: its runbook, its hosts and its checks."""

    system: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str | None = None
    runbook: str = Field(description="path of the runbook, relative to this file")
    hosts: dict[str, str] = Field(min_length=1, description="name -> testinfra host spec")
    features: dict[str, bool] = {}
    command_timeout: float = Field(default=30, gt=0, le=3600)
    connect_timeout: float = Field(default=5, gt=0, le=120)
    checks: Checks

    @field_validator("hosts")
    @classmethod
    def _specs(cls, hosts: dict[str, str]) -> dict[str, str]:
        for name, spec in hosts.items():
            if not re.match(r"^[a-z][a-z0-9+.-]*://", spec):
                raise ValueError(
                    f"host {name!r}: {spec!r} is not a host spec "
                    "(local://, ssh://user@host, paramiko://user@host, docker://name, ...)"
                )
        return hosts

    @model_validator(mode="after")
    def _consistent(self) -> System:
        # The error has no field location of its own, so the message names the place.
        seen: dict[str, str] = {}
        for kind in CHECK_KINDS:
            for index, check in enumerate(getattr(self.checks, kind)):
                place = f"checks.{kind}[{index}] (id {check.id})"
                if check.id in seen:
                    first = seen[check.id]
                    raise ValueError(f"{place}: check id {check.id!r} is used twice (first: {first})")
                seen[check.id] = place
                if check.host is not None and check.host not in self.hosts:
                    raise ValueError(f"{place}.host: host {check.host!r} is not one of {sorted(self.hosts)}")
        return self

    def host_of(self, check: CheckBase) -> str:
        return check.host or next(iter(self.hosts))
