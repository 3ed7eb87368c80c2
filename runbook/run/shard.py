"""Splitting a fleet's checks by host: `--shard K/N` across CI jobs, `--dist-hosts` across xdist workers.

A host (one host spec, however many systems name it) is the unit: all its checks run in
one process, on its one connection, after its reachability check, so "host unreachable,
the rest skipped" holds in every shard and on every worker.

`--shard K/N`: the run's distinct hosts, ordered by the sha256 of their spec, go round
robin to N shards, so every job of a CI matrix computes the same split without talking
to the others, and shards differ by at most one host. Tests that check no host (custom
tests) run in shard 1. `python -m runbook.merge` joins the shards' reports.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pytest

from runbook.describe.loader import LoadedSystem
from runbook.run.case import Case, case_of, cases_of

SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as CI matrices count
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str | None) -> Shard | None:
    if not text:
        return None
    match = SHARD.match(text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise pytest.UsageError(f"--shard {text}: write K/N with 1 <= K <= N (e.g. --shard 2/3)")
    return Shard(int(match.group(1)), int(match.group(2)))


def host_key(case: Case) -> str:
    """The host a check runs on, as one connection: its spec."""
    return case.system.model.hosts.get(case.host_name, f"{case.system.name}/{case.host_name}")


def host_order(systems: list[LoadedSystem]) -> list[str]:
    """Every distinct host of the run, in an order that depends on nothing but the specs."""
    specs = {host_key(case) for system in systems for case in cases_of(system)}
    return sorted(specs, key=lambda spec: hashlib.sha256(spec.encode()).hexdigest())


def shard_of_hosts(systems: list[LoadedSystem], total: int) -> dict[str, int]:
    """host spec -> its shard (1..total), round robin over `host_order`."""
    return {spec: rank % total + 1 for rank, spec in enumerate(host_order(systems))}


class ShardSelection:
    """Registered when --shard is given: deselects the checks of other shards' hosts."""

    def __init__(self, systems: list[LoadedSystem], shard: Shard) -> None:
        self.shard = shard
        self.assignment = shard_of_hosts(systems, shard.total)

    def keeps(self, item: pytest.Item) -> bool:
        case = case_of(item)
        if case is None:
            return self.shard.index == 1
        return self.assignment.get(host_key(case), 1) == self.shard.index

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        other = [item for item in items if not self.keeps(item)]
        if other:
            config.hook.pytest_deselected(items=other)
            items[:] = [item for item in items if self.keeps(item)]

    def pytest_report_header(self, config: pytest.Config) -> str:
        mine = sum(1 for shard in self.assignment.values() if shard == self.shard.index)
        return f"runbook: shard {self.shard}: {mine} of {len(self.assignment)} hosts"


def scope_of_nodeid(systems: list[LoadedSystem]) -> dict[str, str]:
    """`system:check-id` (a test id's parameter) -> its host spec, for the xdist scheduler."""
    return {case.id: host_key(case) for system in systems for case in cases_of(system)}
