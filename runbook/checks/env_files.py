"""A dotenv file defines the keys the service needs, with real values.

The file is parsed on the host by awk, which prints only each key's state
(set / empty / placeholder): the values, which are the system's secrets, never
travel to the runner, so they cannot end up in a report.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import (
    DEFAULT_PLACEHOLDERS,
    CheckBase,
    ContainerName,
    EnvName,
    EnvNameOrPrefix,
    HostPath,
    InContainer,
    regex,
)
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.docker_host import Container
from runbook.host.systemd import UnitName
from runbook.host.target import Target


class EnvFileCheck(CheckBase, InContainer):
    """A dotenv file defines keys with real values. Values never leave the host."""

    kind: ClassVar[str] = "env_files"
    group: ClassVar[str] = "config"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke")

    path: HostPath | None = Field(default=None, description="the dotenv file (on the host or in `container`)")
    unit: UnitName | None = Field(
        default=None,
        description="what this systemd unit's main process runs with (/proc/<MainPID>/environ: "
        "Environment= and EnvironmentFile= as applied); with `path` too, a key the unit lacks is "
        "read from that file, which the service loads itself ('В .env или в systemd Environment=')",
    )
    required: list[EnvName] = Field(default=[], description="keys that must be set with real values")
    optional: list[EnvNameOrPrefix] = Field(
        default=[],
        description="keys, or a prefix with * (MAGIC_MASTER_TELEGRAM_*), the runbook calls optional "
        "('если настроены'): unset passes, each one set must have a real value",
    )
    placeholder_pattern: str = DEFAULT_PLACEHOLDERS
    container: ContainerName | None = None
    formats: dict[str, Literal["ip_list"]] = Field(
        default={},
        description="key -> what its value must be: ip_list = comma-separated IP addresses or "
        "networks (a webhook's IP whitelist); judged on the host, only counts come back",
    )

    @field_validator("placeholder_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        return regex(value)

    @model_validator(mode="after")
    def _some_keys(self) -> EnvFileCheck:
        if not self.required and not self.optional:
            raise ValueError("set required (keys that must be set), optional (judged when set) or both")
        return self

    @model_validator(mode="after")
    def _one_source(self) -> EnvFileCheck:
        if self.path is None and self.unit is None:
            raise ValueError("set path (a dotenv file), unit (a running unit's environment) or both")
        if self.unit is not None and self.container_ref is not None:
            raise ValueError("unit reads a systemd unit of the host; it takes no container or service")
        return self

    @model_validator(mode="after")
    def _formats_of_required_keys(self) -> EnvFileCheck:
        stray = sorted(set(self.formats) - set(self.required))
        if stray:
            raise ValueError(f"formats names keys not in required: {', '.join(stray)}")
        return self


# Later lines win, as in docker compose's env_file; `export KEY=` and quotes allowed.
AWK_PROGRAM = r"""
BEGIN {
  n = split(keys, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1
  n = split(iplists, k, " "); for (i = 1; i <= n; i++) iplist[k[i]] = 1
  nprefix = split(prefixes, prefix, " ")
}
{
  line = $0
  sub(/^[ \t]*export[ \t]+/, "", line)
  if (line ~ /^[ \t]*#/ || index(line, "=") == 0) next
  key = substr(line, 1, index(line, "=") - 1)
  gsub(/[ \t]/, "", key)
  if (!(key in want) && !prefixed(key)) next
  val = substr(line, index(line, "=") + 1)
  gsub(/^[ \t]+|[ \t\r]+$/, "", val)
  q = substr(val, 1, 1)
  if (length(val) >= 2 && (q == "\"" || q == "'") && substr(val, length(val), 1) == q)
    val = substr(val, 2, length(val) - 2)
  if (val == "") state = "empty"
  else if (tolower(val) ~ ph) state = "placeholder"
  else if (key in iplist) state = ip_list(val)
  else state = "set"
  print key, state
}
function prefixed(key,   i) {
  for (i = 1; i <= nprefix; i++) if (substr(key, 1, length(prefix[i])) == prefix[i]) return 1
  return 0
}
# "set", or how many comma-separated entries are not an IPv4/IPv6 address or network.
function ip_list(val,   n, e, i, bad, item, parts, octets, j, ok) {
  n = split(val, e, ","); bad = 0
  for (i = 1; i <= n; i++) {
    item = e[i]; gsub(/^[ \t]+|[ \t]+$/, "", item); ok = 0
    if (item ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(\/[0-9]+)?$/) {
      split(item, parts, "/"); split(parts[1], octets, "."); ok = 1
      for (j = 1; j <= 4; j++) if (octets[j] + 0 > 255) ok = 0
      if (parts[2] != "" && parts[2] + 0 > 32) ok = 0
    } else if (item ~ /^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(\/[0-9]+)?$/ && item ~ /:.*:/) {
      split(item, parts, "/"); ok = (parts[2] == "" || parts[2] + 0 <= 128)
    }
    if (!ok) bad++
  }
  return bad ? "invalid (" bad " of " n " entries not an IP address or network)" : "set"
}
"""


def verify(check: EnvFileCheck, target: Target) -> None:
    ref = check.container_ref
    for container in docker_host.containers(target, ref) if ref else [None]:
        _verify_one(check, target, container)


# The unit's main process environment, one KEY=VALUE a line; exit 5 when it does not run.
UNIT_ENVIRONMENT = (
    'pid=$(systemctl show -p MainPID --value -- %s); [ "${pid:-0}" -gt 0 ] 2>/dev/null || exit 5; '
    "tr '\\000' '\\n' < /proc/$pid/environ | "
)


def _verify_one(check: EnvFileCheck, target: Target, container: Container | None) -> None:
    exact = [key for key in check.optional if not key.endswith("*")]
    prefixes = " ".join(key.removesuffix("*") for key in check.optional if key.endswith("*"))
    keys = " ".join([*check.required, *exact])
    iplists = " ".join(key for key, kind in check.formats.items() if kind == "ip_list")
    # awk expands escapes in -v values, so the regex's backslashes are doubled.
    placeholders = check.placeholder_pattern.replace("\\", "\\\\")
    args: tuple[str, ...] = (keys, prefixes, iplists, placeholders, AWK_PROGRAM)
    awk = "awk -v keys=%s -v prefixes=%s -v iplists=%s -v ph=%s -- %s"
    where = f" in {container}" if container else ""
    states: dict[str, str] = {}
    sources = []
    if check.unit is not None:
        sources.append(f"the environment of {check.unit}")
        result = target.run(UNIT_ENVIRONMENT + awk, check.unit, *args)
        if result.rc == 5:
            wanted = ", ".join([*check.required, *check.optional])
            raise CheckFailed(f"{sources[0]} defines {wanted}", f"{check.unit} is not running")
        if result.rc != 0:
            said = result.stderr.strip()[:300] or f"exit {result.rc}"
            raise CheckError(f"cannot read {sources[0]}: {said}")
        states = _states(result.stdout)
    if check.path is not None:
        sources.append(check.path)
        command, file_args = f"{awk} %s", (*args, check.path)
        if container:
            result = docker_host.exec_in(target, container, command, *file_args)
        else:
            result = target.run(command, *file_args)
        said = result.stderr.strip()[:300]
        absent = result.rc != 0 and ("No such file" in said or "can't open" in said or "cannot open" in said)
        if absent and check.unit is None:
            raise CheckFailed(f"{check.path} exists", f"{check.path} does not exist{where}")
        if absent:
            sources[-1] += " (absent)"  # the service reads its settings from the unit alone
        elif result.rc != 0:
            raise CheckError(f"cannot read {check.path}{where}: {said or f'exit {result.rc}'}")
        else:
            states = _states(result.stdout) | states  # what the unit runs with wins
    source = " or ".join(sources)
    problems = []
    for key in check.required:
        state = states.get(key, "missing")
        if state != "set":
            problems.append(f"{key} {'is ' if state != 'missing' else ''}{state}")
    for key, state in states.items():
        if key not in check.required and state not in {"set", "empty"}:
            problems.append(f"{key} is {state}")  # an optional key, set: judged like a required one
    if problems:
        wanted = ", ".join(check.required)
        if check.optional:
            wanted += (" with real values; " if wanted else "") + f"{', '.join(check.optional)} unset or real"
        else:
            wanted += " with real values"
        raise CheckFailed(
            f"{source} defines {wanted}",
            f"{source}{where}: " + "; ".join(problems) + " (values not shown)",
        )


def _states(output: str) -> dict[str, str]:
    """The awk program's `KEY state` lines, by key."""
    states: dict[str, str] = {}
    for line in output.splitlines():
        key, _, state = line.partition(" ")
        states[key] = state.strip()
    return states
