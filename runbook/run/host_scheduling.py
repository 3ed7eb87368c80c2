"""`-n N --dist-hosts`: xdist gives each worker whole hosts, not single checks.

xdist's own modes split by test (load), module (loadscope) or `@group` suffix (loadgroup,
which changes every test id in the reports). Here the scope of a runbook test is its host
spec, looked up from its id (`system:check-id`), so ids stay as they are and a host's
checks share one connection, one reachability verdict and one ahead task on one worker.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from runbook.describe.loader import LoadedSystem
from runbook.run.shard import scope_of_nodeid


class HostScheduling(LoadScopeScheduling):
    """LoadScopeScheduling whose scope is the host of a runbook test (else its module)."""

    def __init__(self, config: pytest.Config, log: Any, scopes: dict[str, str]) -> None:
        super().__init__(config, log)
        self.scopes = scopes

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.endswith("]") and "[" in nodeid:
            host = self.scopes.get(nodeid[nodeid.rindex("[") + 1 : -1])
            if host is not None:
                return f"host {host}"
        return super()._split_scope(nodeid)


class HostDistribution:
    """Registered on the xdist controller when --dist-hosts is given."""

    def __init__(self, systems: list[LoadedSystem]) -> None:
        self.scopes = scope_of_nodeid(systems)

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> HostScheduling:
        return HostScheduling(config, log, self.scopes)
