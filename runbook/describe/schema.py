"""The system description schema: what one YAML file under systems/ may say.

A description names a system, its runbook, its hosts (testinfra host specs) and
its checks grouped by kind. The kinds, and so the fields of `checks:`, come from
the registry (`runbook.describe.kinds`): each kind's model lives with its check module.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, create_model, field_validator, model_validator

from runbook.describe import kinds
from runbook.describe.escalation import Escalation
from runbook.describe.model import (
    MARKERS,
    CheckBase,
    Model,
    ProjectName,
    services_without_project,
    with_compose_project,
)

__all__ = ["CHECK_KINDS", "MARKERS", "Checks", "System"]

CHECK_KINDS: dict[str, type[CheckBase]] = kinds.describable()


class ChecksBase(Model):
    """Checks grouped by kind; each group is a list of that kind's checks."""

    def all(self) -> list[CheckBase]:
        return [check for kind in CHECK_KINDS for check in getattr(self, kind)]

    def of_kind(self, kind: str) -> list[CheckBase]:
        return list(getattr(self, kind, []))


# One optional list field per registered kind: `checks: {containers: [...], http: [...]}`.
_kind_fields: dict[str, Any] = {kind: (list[model], []) for kind, model in CHECK_KINDS.items()}
Checks = create_model("Checks", __base__=ChecksBase, **_kind_fields)


class Inventory(Model):
    """An Ansible inventory (INI or YAML) whose hosts and groups join the description's."""

    file: str = Field(description="path of the inventory, relative to the description")
    spec: str = Field(
        default="ssh://{user}@{address}:{port}",
        description="host spec of each inventory host: {name}, {address} (ansible_host), "
        "{user} (ansible_user, default root), {port} (ansible_port, default 22)",
    )


# A host's name in the description (an inventory's too): Ansible's Web01 as much as web-01.
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class System(Model):
    """One system: its runbook, its hosts and its checks."""

    system: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str | None = None
    runbook: str = Field(description="path of the runbook, relative to this file")
    coverage: str | None = Field(
        default=None,
        description="path of the runbook's statement inventory (python -m runbook coverage), "
        "relative to this file",
    )
    hosts: dict[str, str] = Field(min_length=1, description="name -> testinfra host spec")
    groups: dict[str, list[str]] = Field(
        default={},
        description="group name -> host names; a check naming a group runs on each of its hosts "
        "(test id system:check-id@host). An `inventory:` adds its groups here",
    )
    inventory: Inventory | None = None
    params: dict[str, str | bool | int | float | None] = Field(
        default={},
        description="{name} placeholders in check fields -> default value (null: --param name=... "
        "is required); --param name=value overrides",
    )
    features: dict[str, bool] = {}
    allow_writes: bool = Field(
        default=False,
        description="let checks that write (rate limits, restore tests) run, e.g. in staging",
    )
    compose_project: ProjectName | None = Field(
        default=None, description="the compose project of checks naming a `service:` without `project:`"
    )
    command_timeout: float = Field(default=30, gt=0, le=3600)
    connect_timeout: float = Field(default=5, gt=0, le=120)
    escalation: Escalation | None = Field(
        default=None,
        description="the runbook's escalation matrix, if it has one: incident.md names who is on "
        "the worst failure by how long it has lasted",
    )
    checks: Checks  # type: ignore[valid-type]

    @field_validator("hosts")
    @classmethod
    def _specs(cls, hosts: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for name in hosts:
            if not HOST_NAME.fullmatch(name):
                raise ValueError(
                    f"host name {name!r}: letters, digits, '.', '_' and '-' (e.g. web01, db.example.com)"
                )
            if name.lower() in seen:  # reachable-<host> ids and reports are case-blind
                raise ValueError(f"host names {seen[name.lower()]!r} and {name!r} differ only in case")
            seen[name.lower()] = name
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
            for index, check in enumerate(self.checks.of_kind(kind)):
                place = f"checks.{kind}[{index}] (id {check.id})"
                if check.id in seen:
                    first = seen[check.id]
                    raise ValueError(f"{place}: check id {check.id!r} is used twice (first: {first})")
                seen[check.id] = place
                if check.host is not None and check.host not in self.hosts and check.host not in self.groups:
                    known = sorted(self.hosts) + [f"group {group}" for group in sorted(self.groups)]
                    raise ValueError(f"{place}.host: host {check.host!r} is not one of {known}")
        for group, members in self.groups.items():
            if group in self.hosts:
                raise ValueError(f"groups.{group}: a group cannot have the name of a host")
            unknown = [member for member in members if member not in self.hosts]
            if unknown:
                raise ValueError(f"groups.{group}: {', '.join(unknown)} not among hosts {sorted(self.hosts)}")
            if not members:
                raise ValueError(f"groups.{group}: a group needs at least one host")
        for kind in CHECK_KINDS:
            for index, check in enumerate(self.checks.of_kind(kind)):
                unknown = [cause for cause in check.after if cause not in seen or cause == check.id]
                if unknown:
                    named = ", ".join(unknown)
                    raise ValueError(
                        f"checks.{kind}[{index}].after: {named} is no other check of this system"
                    )
        return self

    @model_validator(mode="after")
    def _compose_project(self) -> System:
        """Checks naming a compose service get the system's compose_project unless they name one."""
        filled: dict[str, list[CheckBase]] = {}
        for kind in CHECK_KINDS:
            checks = self.checks.of_kind(kind)
            if self.compose_project:
                checks = [with_compose_project(check, self.compose_project) for check in checks]
            for index, check in enumerate(checks):
                for service in services_without_project(check):
                    raise ValueError(
                        f"checks.{kind}[{index}] (id {check.id}): compose service {service!r} has no "
                        "project: write project: on the check or compose_project: on the system"
                    )
            filled[kind] = checks
        object.__setattr__(self, "checks", self.checks.model_copy(update=filled))
        if self.allow_writes:  # e.g. scenario's mutating steps, which decide step by step
            for check in self.checks.all():
                check.allow_writes()
        return self

    def host_of(self, check: CheckBase) -> str:
        return check.host or next(iter(self.hosts))

    def hosts_of(self, check: CheckBase) -> list[str] | None:
        """The hosts of the group a check names (one test each), None for a single host."""
        if check.host is not None and check.host in self.groups:
            return self.groups[check.host]
        return None
