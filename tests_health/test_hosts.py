"""Step zero of every runbook: reach the server (`ssh root@...`)."""

from __future__ import annotations

import pytest

from runbook.hosts import Target


@pytest.mark.runbook_kind("hosts")
def test_host_reachable(check: object, target: Target) -> None:
    target.check_reachable()
