"""Backups: the newest archive's age, size and integrity; retention; the cron entry."""

from __future__ import annotations

import pytest

from runbook.checks import backups, cron
from runbook.hosts import Target
from runbook.schema import BackupCheck, CronCheck


@pytest.mark.runbook_kind("backups")
def test_backup(check: BackupCheck, target: Target) -> None:
    backups.verify(check, target)


@pytest.mark.runbook_kind("cron")
def test_cron(check: CronCheck, target: Target) -> None:
    cron.verify(check, target)
