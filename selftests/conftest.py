"""Shared fixtures of the project's own tests (run with `pytest -p no:runbook selftests`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runbook.hosts import Target
from runbook.secrets import SECRETS


@pytest.fixture(autouse=True)
def clean_secrets() -> Iterator[None]:
    """SECRETS is process-wide: each test starts and ends with an empty registry."""
    SECRETS.clear()
    yield
    SECRETS.clear()


@pytest.fixture
def local() -> Target:
    """A fresh local:// Target per test: its caches (backup listings) never leak between tests."""
    return Target("local", "local://", command_timeout=10, connect_timeout=5)
