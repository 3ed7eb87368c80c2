"""HTTP endpoints: `/health` and friends, with the runbook's `--max-time`."""

from __future__ import annotations

import pytest

from runbook.checks import http
from runbook.hosts import Target
from runbook.schema import HttpCheck


@pytest.mark.runbook_kind("http")
def test_http(check: HttpCheck, target: Target) -> None:
    http.verify(check, target)
