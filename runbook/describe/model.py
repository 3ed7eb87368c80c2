"""What every check is made of: the base model, severities, markers and typed units.

A check kind is one module under `runbook/checks/`: its model (a `CheckBase`
subclass with a `kind`) and its `verify(check, target)`. Defining the model
registers the kind (see `runbook.describe.kinds`); nothing else needs wiring. Every
check carries what every report needs (InSpec's title / impact / description):
an id, a title, a severity, the markers it runs under, the runbook section it
comes from and the runbook's own remedy. A check asserts one fact (the fields
of one "aspect"), so that one runbook failure fails the checks describing it
and nothing else.

Durations and sizes are parsed once here (`Duration`, `ByteSize`): a check's
code reads seconds and bytes, never '24h' or '1G'.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

Severity = Literal["P1", "P2", "P3", "P4"]
Marker = Literal["daily", "smoke", "incident"]
MARKERS: tuple[str, ...] = ("daily", "smoke", "incident")
# Where a kind's checks become pytest tests: tests_health/, tests_backup/, tests_config/.
GROUPS: tuple[str, ...] = ("health", "backup", "config")

# A URL the suite asks (or notes traffic to): http(s), no whitespace, bounded.
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=4096)]
CheckId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)]

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# A year: longer windows and ages are typos, and inf would make a check pass forever.
MAX_SECONDS = 366 * 86400


def parse_size(text: str | int) -> int:
    """Bytes from '1G', '512m', '1000' (docker's binary units)."""
    if isinstance(text, bool):
        raise ValueError(f"not a size: {text!r}")
    if isinstance(text, int):
        return text
    if not isinstance(text, str):
        raise ValueError(f"not a size: {text!r} (use e.g. 1000, 512M, 1G)")
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 1000, 512M, 1G)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def parse_duration(text: str | int | float) -> float:
    """Seconds from '24h', '30m', '90s', '2d' or a plain number of seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    elif isinstance(text, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
        if not match:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 24h, 2d)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 24h, 2d)")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} out of range (0 to 366d)")
    return seconds


def format_duration(seconds: float) -> str:
    """'24h', '30m', '90s', '2d', '1.5h': how a description writes a window."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0 and (unit != "d" or seconds >= 2 * 86400):
            return f"{seconds / size:g}{unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds:g}s"


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _env_name_or_prefix(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\*?", value):
        raise ValueError(f"{value!r} is not an environment variable name or a PREFIX_*")
    return value


# An environment variable's name; or a name, or a prefix with * for every name so starting
# (MAGIC_MASTER_TELEGRAM_*, SMOKE_MAX_MS_*).
EnvName = Annotated[str, AfterValidator(_env_name)]
EnvNameOrPrefix = Annotated[str, AfterValidator(_env_name_or_prefix)]


def _host_path(value: str) -> str:
    if "\0" in value or "\n" in value:
        raise ValueError(f"{value!r}: a path on the host has no NUL or newline")
    return value


# An absolute path on the host: it can never be read as an option by the command that gets it.
HostPath = Annotated[str, Field(pattern=r"^/", min_length=1, max_length=4096), BeforeValidator(_host_path)]
# A docker container name (docker's own rule): never an option, never a shell word to fear.
ContainerName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", max_length=255)]
# Seconds, written '24h' / '30m' / 90 in YAML.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    # What a description may write (the schema an editor checks against), not the seconds read.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smhdSMHD]?\s*$"},
            ],
            "description": "seconds, or e.g. 90s, 30m, 24h, 2d",
        }
    ),
]
# Bytes, written '1G' / '512M' / 1000 in YAML.
ByteSize = Annotated[
    int,
    BeforeValidator(parse_size),
    Field(ge=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[bkmgtBKMGT]?([iI]?[bB])?\s*$"},
            ],
            "description": "bytes, or e.g. 512M, 1G",
        }
    ),
]


def regex(value: str) -> str:
    """The value if it compiles; pydantic reports only ValueError, and re.error is not one.

    Patterns run as grep/awk EREs on the host, where `[[:space:]]` is a class: Python's
    warning that it reads it as a nested set is about Python, not about the pattern.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {value!r} ({exc})") from None
    return value


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


LINES = re.compile(r"^(\d+)(?:-(\d+))?$")


class Source(Model):
    """Where the runbook says it: lines of the system's runbook and a few of its words, exactly.

    `selftests/test_traceability.py` fails when the words are no longer at those lines, so an
    edit of the runbook that moves or changes a statement shows as drift, not as silence.
    """

    lines: str = Field(description="'120' or '120-124': 1-based lines of the system's runbook")
    quote: str = Field(min_length=3, max_length=300, description="a few words of those lines, exactly")

    @field_validator("lines", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> str:
        text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
        match = LINES.fullmatch(text)
        if not match or int(match[1]) < 1 or (match[2] and int(match[2]) < int(match[1])):
            raise ValueError(f"lines {value!r}: write N or N-M (1-based, N <= M)")
        return text

    @property
    def span(self) -> tuple[int, int]:
        first, _, last = self.lines.partition("-")
        return int(first), int(last or first)

    def __str__(self) -> str:
        return f"lines {self.lines}: «{self.quote}»"


def _one_or_more(value: Any) -> Any:
    """One item (a feature's name, a source) or a list of them."""
    return [value] if isinstance(value, str | dict) else value


# A feature's name, as `features:` spells its keys.
FeatureName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]


class KindError(Exception):
    """Two modules claim one kind, or a kind has no verify: a programming error, said at import."""


# Every kind by name, filled as each kind's model is defined (runbook.describe.kinds reads it).
KINDS: dict[str, type[CheckBase]] = {}


def _register(model: type[CheckBase]) -> None:
    """Called by CheckBase.__pydantic_init_subclass__ for every model with a `kind`."""
    known = KINDS.get(model.kind)
    if known is not None and known.__qualname__ != model.__qualname__:
        raise KindError(f"kind {model.kind!r} defined twice: {known.__module__} and {model.__module__}")
    if model.group not in GROUPS:
        raise KindError(f"kind {model.kind!r}: group {model.group!r} is not one of {GROUPS}")
    KINDS[model.kind] = model


class CheckBase(Model):
    """Fields every check has, whatever its kind. Subclassing with a `kind` registers the kind."""

    kind: ClassVar[str] = ""
    group: ClassVar[str] = "health"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "incident")
    # Aspect fields: exactly one must be set on a check of a kind that has them.
    aspects: ClassVar[tuple[str, ...]] = ()
    # False for checks the suite makes itself (host reachability), not described in YAML.
    describable: ClassVar[bool] = True
    # Traits: what the run must know about a kind before running it, so that core code never
    # names a kind. What the check changes on the system it checks ("failed logins on /login"),
    # or "" for a read-only check. A check that writes runs only with --allow-writes or
    # `allow_writes: true`, and never beside other checks.
    writes: ClassVar[str] = ""
    # True for a check whose own traffic loads the service (a load test): it runs after every
    # other check, so what it leaves queued on the service cannot slow the checks after it.
    runs_last: ClassVar[bool] = False
    # True for a kind whose checks time the service's answers (a load test, a rate limit): run
    # beside other checks they would measure them too, so they run alone, in their turn.
    timed: ClassVar[bool] = False
    # True for the suite's own check that a host answers: it runs first on its host, and when it
    # fails the host's other checks are skipped pointing at it (one failure, not one per check).
    reachability: ClassVar[bool] = False

    id: CheckId
    title: str = Field(min_length=3)
    severity: Severity
    section: str = Field(min_length=1, description="runbook section the check comes from")
    remedy: str = Field(min_length=1, description="the runbook's 'what to do', quoted")
    markers: list[Marker] | None = None
    host: str | None = Field(default=None, description="host name from `hosts`; default: the first")
    description: str | None = None
    requires_feature: Annotated[list[FeatureName], BeforeValidator(_one_or_more)] | None = Field(
        default=None,
        description="skip unless the system declares this feature (e.g. monitoring), or every "
        "one of a list of them (a check that needs two site decisions)",
    )
    after: list[CheckId] = Field(
        default=[],
        description="ids of checks whose failure explains this one's (redis-ping for /ready's "
        "redis=error): when one of them fails too, this failure is shown under it as a symptom",
    )
    source: Annotated[list[Source], BeforeValidator(_one_or_more)] | None = Field(
        default=None,
        description="the runbook's lines this check asserts: {lines: 120-124, quote: '...'} or a list",
    )

    # Set after loading (never from YAML): the description says `allow_writes: true`, or the run
    # was started with --allow-writes (runbook.run.collect grants it with the run's permissions).
    _writes_allowed: bool = PrivateAttr(default=False)

    @property
    def writes_allowed(self) -> bool:
        """Whether this run may write to the check's system (a scenario's mutating steps)."""
        return self._writes_allowed

    def allow_writes(self) -> None:
        self._writes_allowed = True

    @classmethod
    def for_host(cls, name: str, spec: str = "") -> CheckBase:
        """The check of a reachability kind for one host (only kinds with `reachability`)."""
        raise NotImplementedError(f"kind {cls.kind!r} makes no per-host check")

    @property
    def measures_time(self) -> bool:
        """Whether the check times the service's answers (see `timed`); a kind may decide per check."""
        return self.timed

    @property
    def is_download(self) -> bool:
        """True for a check that fetches a whole download (runs only with --allow-downloads)."""
        return False

    @property
    def provides(self) -> tuple[str, ...]:
        """What this check asserts exists and runs (a container's `state: running`): when it
        fails, failing checks that need the same thing are its symptoms (runbook.record)."""
        return ()

    @property
    def needs(self) -> tuple[str, ...]:
        """What this check looks at, which a failing `provides` of the same host explains."""
        ref = getattr(self, "container_ref", None)
        return (ref.key,) if isinstance(ref, ContainerRef) else ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.kind:
            _register(cls)

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


# A compose service or project name (compose's own rules), never an option.
ServiceName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", max_length=255)]
ProjectName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=255)]


@dataclass(frozen=True)
class ContainerRef:
    """A container as a description names it: outright, or by compose project and service."""

    name: str | None = None
    service: str | None = None
    project: str | None = None

    def __str__(self) -> str:
        return self.name or f"compose service {self.service} (project {self.project})"

    @property
    def key(self) -> str:
        """'container calendar-redis', 'service map-v12/redis': what a cause and its symptoms share."""
        return f"container {self.name}" if self.name else f"service {self.project}/{self.service}"


class InContainer(Model):
    """A model that names a container: `container: NAME`, or `service: web` (+ `project:`).

    Compose names containers `<project>-<service>-<n>`, so a description names the
    service and runbook.host.docker_host finds its containers by compose's labels. A
    missing `project` is the system's `compose_project`, filled in at load.
    """

    # The field holding a container name in the subclass, and whether one of the two is required.
    container_field: ClassVar[str] = "container"
    container_required: ClassVar[bool] = False

    service: ServiceName | None = Field(default=None, description="compose service, instead of a container")
    project: ProjectName | None = Field(
        default=None, description="compose project of `service`; default: the system's compose_project"
    )

    @model_validator(mode="after")
    def _container_or_service(self) -> InContainer:
        named = getattr(self, self.container_field, None)
        service = type(self).model_fields["service"].alias or "service"
        if named and self.service:
            raise ValueError(f"set {self.container_field} or {service}, not both")
        if self.project and not self.service:
            raise ValueError(f"project names the compose project of `{service}`; set {service} too")
        if self.container_required and not named and not self.service:
            raise ValueError(
                f"set {self.container_field} (a container name) or {service} (a compose service)"
            )
        return self

    @property
    def container_ref(self) -> ContainerRef | None:
        named = getattr(self, self.container_field, None)
        if named:
            return ContainerRef(name=named)
        if self.service:
            return ContainerRef(service=self.service, project=self.project)
        return None


M = TypeVar("M", bound=BaseModel)


def with_compose_project(model: M, project: str) -> M:
    """`model` with `project` filled into it and into its nested container references lacking one."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, InContainer):
            filled = with_compose_project(value, project)
            if filled is not value:
                update[name] = filled
    if isinstance(model, InContainer) and model.service and model.project is None:
        update["project"] = project
    return model.model_copy(update=update) if update else model


def services_without_project(model: BaseModel) -> list[str]:
    """Compose services named in `model` (or nested in it) whose project is unknown."""
    found = []
    if isinstance(model, InContainer) and model.service and model.project is None:
        found.append(model.service)
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, InContainer):
            found += services_without_project(value)
    return found


DEFAULT_PLACEHOLDERS = r"^(changeme|change_me|change-me|your[_-].*|xxx+|\.\.\.|<.*>|todo|tbd|placeholder|example.*|dummy|none|null|secret|token|\*+)$"  # noqa: E501
