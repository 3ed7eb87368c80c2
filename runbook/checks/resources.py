"""Disk usage of a path (`df -P`) and available memory (/proc/meminfo MemAvailable)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from runbook.describe.model import CheckBase, HostPath
from runbook.describe.units import human_bytes
from runbook.errors import CheckError, CheckFailed
from runbook.host.target import Target


class ResourceCheck(CheckBase):
    """Disk usage of a path, or the host's available memory."""

    kind: ClassVar[str] = "resources"
    aspects: ClassVar[tuple[str, ...]] = ("disk", "min_available_mb")

    disk: HostPath | None = Field(default=None, description="path whose filesystem is checked")
    max_used_percent: float | None = Field(
        default=None, gt=0, le=100, description="default 90 (without min_free_mb)"
    )
    min_free_mb: float | None = Field(
        default=None, gt=0, le=1e9, description="free space of `disk`, e.g. 200"
    )
    min_available_mb: float | None = Field(default=None, gt=0, le=1e9)

    @model_validator(mode="after")
    def _limits_of_a_disk(self) -> ResourceCheck:
        if self.disk is None and (self.min_free_mb is not None or self.max_used_percent is not None):
            raise ValueError("min_free_mb and max_used_percent are limits of a disk: set disk too")
        return self


def verify(check: ResourceCheck, target: Target) -> None:
    if check.disk is not None:
        _disk(check, check.disk, target)
    else:
        _memory(check, target)


def _disk(check: ResourceCheck, path: str, target: Target) -> None:
    result = target.run("df -P -k -- %s", path)
    lines = result.stdout.strip().splitlines()
    if result.rc != 0 or len(lines) < 2:
        raise CheckError(f"df {path} failed: {result.stderr.strip()[:300]}")
    fields = lines[-1].split()
    size_kb, used_kb, free_kb = int(fields[1]), int(fields[2]), int(fields[3])
    percent = int(fields[4].rstrip("%"))
    mount = fields[5]
    free_mb = free_kb / 1024
    if check.min_free_mb is not None and free_mb < check.min_free_mb:
        raise CheckFailed(
            f"at least {check.min_free_mb:g} MB free on the filesystem of {path}",
            f"{free_mb:.0f} MB free on {mount} < {check.min_free_mb:g} MB ({percent}% used of "
            f"{human_bytes(size_kb * 1024)})",
        )
    limit = check.max_used_percent or (90 if check.min_free_mb is None else None)
    if limit is not None and percent > limit:
        raise CheckFailed(
            f"disk usage of {path} at most {limit:g}%",
            f"disk {mount} {percent}% used > {limit:g}% "
            f"({human_bytes(free_kb * 1024)} free of {human_bytes(size_kb * 1024)}, "
            f"{human_bytes(used_kb * 1024)} used)",
        )


def _memory(check: ResourceCheck, target: Target) -> None:
    result = target.run("grep -E '^(MemAvailable|MemTotal):' /proc/meminfo")
    values = {}
    for line in result.stdout.splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) * 1024
    if "MemAvailable" not in values:
        raise CheckError(f"cannot read /proc/meminfo: {result.stderr.strip()[:300]}")
    available_mb = values["MemAvailable"] / 1024**2
    minimum = check.min_available_mb or 0
    if available_mb < minimum:
        raise CheckFailed(
            f"at least {minimum:g} MB memory available",
            f"{available_mb:.0f} MB available < {minimum:g} MB (of {human_bytes(values.get('MemTotal', 0))})",
        )
