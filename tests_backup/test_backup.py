"""Backups: the newest archive's age, size and integrity; retention; the cron entry."""

from __future__ import annotations

import pytest

from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run.execute import run_check


@pytest.mark.runbook_group("backup")
def test_backup(check: CheckBase, target: Target) -> None:
    run_check(check, target)
