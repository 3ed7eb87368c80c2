"""How many containers match a filter: the runbook's "do not run several bot instances"."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runbook.describe.model import CheckBase
from runbook.errors import CheckError, CheckFailed
from runbook.host.target import Target


class InstancesCheck(CheckBase):
    """How many containers match a `docker ps` filter (e.g. only one bot instance)."""

    kind: ClassVar[str] = "instances"

    filters: dict[str, str] = Field(min_length=1, description="docker ps --filter KEY=VALUE")
    count: int = Field(ge=0, le=100_000)


def verify(check: InstancesCheck, target: Target) -> None:
    filters = " ".join("--filter %s" for _ in check.filters)
    pairs = [f"{key}={value}" for key, value in check.filters.items()]
    # Only running ones: a container in a restart loop is not an instance that serves.
    result = target.run(f"docker ps --filter status=running {filters} --format '{{{{.Names}}}}'", *pairs)
    if result.rc != 0:
        raise CheckError(f"docker ps failed: {result.stderr.strip()[:300]}")
    names = sorted(line.strip() for line in result.stdout.splitlines() if line.strip())
    if len(names) != check.count:
        shown = ", ".join(names) or "none"
        raise CheckFailed(
            f"{check.count} running container(s) matching {', '.join(pairs)}",
            f"{len(names)} running ({shown}) != {check.count}",
        )
