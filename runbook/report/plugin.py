"""Placeholder until the reporting modules land."""

from __future__ import annotations

import pytest


def configure(config: pytest.Config) -> None:
    return None
