"""Health: reaching the hosts, containers, HTTP endpoints, connectivity, logs, disk and memory."""

from __future__ import annotations

import pytest

from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run.execute import run_check


@pytest.mark.runbook_group("health")
def test_health(check: CheckBase, target: Target) -> None:
    run_check(check, target)
