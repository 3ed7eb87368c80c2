"""A container's environment (runbook: "`.env`: SECRET_KEY, DATABASE_URL, REDIS_URL, ...;
SESSION_COOKIE_SECURE=1 with HTTPS; BOT_API_KEY the same on the server and the bot").

What the container runs with (`docker inspect` Config.Env), not what a file says.
The values are the system's secrets, so they never leave the host: awk there
prints each wanted key's state (set / empty / placeholder), its value only when
it is a flag (0/1/true/false/yes/no/on/off), and a SHA-256 of the value salted
with a fresh random salt. Two containers agree on a secret when their salted
hashes do; an expected value is compared by hashing it the same way here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import DEFAULT_PLACEHOLDERS, CheckBase, ContainerName, InContainer, regex
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.docker_host import Container
from runbook.host.target import Target

EnvKey = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]
FLAG_VALUES = r"^(0|1|true|false|yes|no|on|off)$"

# Input: ENV_LINES ("KEY=value" Go-quoted, one a line). Output: `KEY state shown hash  -`.
AWK_PROGRAM = r"""
BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }
{
  line = $0
  if (length(line) >= 2 && substr(line, 1, 1) == "\"" && substr(line, length(line), 1) == "\"")
    line = substr(line, 2, length(line) - 2)
  eq = index(line, "=")
  if (eq == 0) next
  key = substr(line, 1, eq - 1)
  if (!(key in want)) next
  val = substr(line, eq + 1)
  if (val == "") state = "empty"
  else if (tolower(val) ~ ph) state = "placeholder"
  else state = "set"
  shown = (tolower(val) ~ flags) ? val : "-"
  printf "%s %s %s ", key, state, shown
  fflush()
  printf "%s%s", salt, val | "sha256sum"
  close("sha256sum")
}
"""


class Peer(InContainer):
    """The other container of a comparison, and the keys both must hold alike."""

    container_required: ClassVar[bool] = True

    container: ContainerName | None = None
    keys: list[EnvKey] = Field(min_length=1)


class ContainerEnvCheck(CheckBase, InContainer):
    """Environment of a container (each of a compose service's): keys, flags, agreement."""

    kind: ClassVar[str] = "container_env"
    group: ClassVar[str] = "config"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke")
    aspects: ClassVar[tuple[str, ...]] = ("required", "values", "same_as")
    container_required: ClassVar[bool] = True

    container: ContainerName | None = None
    required: list[EnvKey] | None = Field(default=None, description="keys with real (non-placeholder) values")
    optional: list[EnvKey] = Field(
        default=[],
        description="with required: keys the runbook calls optional ('рекомендуется'): unset (absent "
        "or empty) passes, a set value must be real (not a placeholder)",
    )
    values: dict[EnvKey, str] | None = Field(default=None, description="flags: {METRICS_ALLOW_PUBLIC: '0'}")
    same_as: Peer | None = Field(default=None, description="another container with the same values of keys")
    unset_ok: bool = Field(
        default=False,
        description="values / same_as: a key that is unset (absent or empty) passes, as the app's "
        "default applies ('по умолчанию 0'); for same_as, unset in both agrees",
    )
    placeholder_pattern: str = DEFAULT_PLACEHOLDERS

    @field_validator("placeholder_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        return regex(value)

    @model_validator(mode="after")
    def _modifiers(self) -> ContainerEnvCheck:
        if self.optional and self.required is None:
            raise ValueError("optional: goes with required: (keys judged only when set)")
        if self.unset_ok and self.required is not None:
            raise ValueError("unset_ok: goes with values: or same_as: (use optional: with required:)")
        return self


@dataclass(frozen=True)
class Variable:
    state: str  # set / empty / placeholder
    shown: str | None  # the value when it is a flag, else None
    digest: str  # sha256 of salt + value


def read_env(
    target: Target, container: Container, keys: list[str], placeholders: str, salt: str
) -> dict[str, Variable]:
    """The wanted keys of the container's environment, as states and salted hashes (absent: missing)."""
    docker_host.inspect_or_fail(target, container)
    result = target.run(
        f"{docker_host.ENV_LINES} | awk -v keys=%s -v ph=%s -v flags=%s -v salt=%s -- %s",
        container.name,
        " ".join(keys),
        placeholders.replace("\\", "\\\\"),  # awk expands escapes in -v values
        FLAG_VALUES,
        salt,
        AWK_PROGRAM,
    )
    if result.rc != 0:
        raise CheckError(f"reading the environment of {container}: {result.stderr.strip()[:300]}")
    found = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            key, state, shown, digest = parts[:4]
            found[key] = Variable(state, None if shown == "-" else shown, digest)
    return found


def salted(salt: str, value: str) -> str:
    """The hash awk makes of a value, for a value the description expects (docker's %q quoting)."""
    quoted = json.dumps(value, ensure_ascii=False)[1:-1]
    return hashlib.sha256((salt + quoted).encode()).hexdigest()


def verify(check: ContainerEnvCheck, target: Target) -> None:
    assert check.container_ref is not None  # container_required
    salt = secrets.token_hex(16)
    for container in docker_host.containers(target, check.container_ref):
        if check.required is not None:
            _required(check, target, container, salt)
        elif check.values is not None:
            _values(check, target, container, salt)
        else:
            _same_as(check, target, container, salt)


def _required(check: ContainerEnvCheck, target: Target, container: Container, salt: str) -> None:
    keys = check.required or []
    found = read_env(target, container, [*keys, *check.optional], check.placeholder_pattern, salt)
    problems = []
    for key in keys:
        state = found[key].state if key in found else "missing"
        if state != "set":
            problems.append(f"{key} {'is ' if state != 'missing' else ''}{state}")
    for key in check.optional:
        if key in found and found[key].state == "placeholder":
            problems.append(f"{key} is placeholder")
    if problems:
        also = f" ({', '.join(check.optional)} unset or real)" if check.optional else ""
        raise CheckFailed(
            f"the environment of {container} has {', '.join(keys)} with real values{also}",
            f"{container}: {'; '.join(problems)} (values not shown)",
        )


def _values(check: ContainerEnvCheck, target: Target, container: Container, salt: str) -> None:
    wanted = check.values or {}
    found = read_env(target, container, list(wanted), check.placeholder_pattern, salt)
    problems = []
    for key, value in wanted.items():
        variable = found.get(key)
        if check.unset_ok and (variable is None or variable.state == "empty"):
            continue  # unset: the app's default stands
        if variable is None:
            problems.append(f"{key} missing (expected {value})")
        elif variable.digest != salted(salt, value):
            shown = variable.shown if variable.shown is not None else "another value (not shown)"
            problems.append(f"{key}={shown} != {value}")
    if problems:
        expected = " ".join(f"{key}={value}" for key, value in wanted.items())
        raise CheckFailed(f"{container} runs with {expected}", f"{container}: {'; '.join(problems)}")


def _same_as(check: ContainerEnvCheck, target: Target, container: Container, salt: str) -> None:
    peer = check.same_as
    assert peer is not None and peer.container_ref is not None
    keys = peer.keys
    mine = read_env(target, container, keys, check.placeholder_pattern, salt)
    for other in docker_host.containers(target, peer.container_ref):
        theirs = read_env(target, other, keys, check.placeholder_pattern, salt)
        problems = []
        for key in keys:
            absent = [str(place) for place, env in ((container, mine), (other, theirs)) if key not in env]
            if check.unset_ok and len(absent) == 2:
                continue  # unset in both: nothing to disagree on
            if absent:
                problems.append(f"{key} missing in {' and '.join(absent)}")
            elif mine[key].digest != theirs[key].digest:
                problems.append(f"{key} differs")
        if problems:
            raise CheckFailed(
                f"{container} and {other} hold the same {', '.join(keys)}",
                f"{'; '.join(problems)} between {container} and {other} (values not shown)",
            )
