"""Logs: `docker logs --since 24h | grep -i -E "(error|exception|...)"`."""

from __future__ import annotations

import pytest

from runbook.checks import logs
from runbook.hosts import Target
from runbook.schema import LogCheck


@pytest.mark.runbook_kind("logs")
def test_logs(check: LogCheck, target: Target) -> None:
    logs.verify(check, target)
