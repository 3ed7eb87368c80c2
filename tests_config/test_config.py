"""Configuration: the service's .env keys, SQLite's journal mode."""

from __future__ import annotations

import pytest

from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run.execute import run_check


@pytest.mark.runbook_group("config")
def test_config(check: CheckBase, target: Target) -> None:
    run_check(check, target)
