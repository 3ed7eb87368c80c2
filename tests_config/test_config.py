"""Configuration: the service's .env keys, SQLite's journal mode."""

from __future__ import annotations

import pytest

from runbook.hosts import Target
from runbook.model import CheckBase
from runbook.run import run_check


@pytest.mark.runbook_group("config")
def test_config(check: CheckBase, target: Target) -> None:
    run_check(check, target)
