"""Host resources: `df -h /` and `free -h`."""

from __future__ import annotations

import pytest

from runbook.checks import resources
from runbook.hosts import Target
from runbook.schema import ResourceCheck


@pytest.mark.runbook_kind("resources")
def test_resource(check: ResourceCheck, target: Target) -> None:
    resources.verify(check, target)
