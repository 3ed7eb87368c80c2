"""Configuration: the service's .env keys, SQLite's journal mode."""

from __future__ import annotations

import pytest

from runbook.checks import env_files, sqlite
from runbook.hosts import Target
from runbook.schema import EnvFileCheck, SqliteCheck


@pytest.mark.runbook_kind("env_files")
def test_env_file(check: EnvFileCheck, target: Target) -> None:
    env_files.verify(check, target)


@pytest.mark.runbook_kind("sqlite")
def test_sqlite(check: SqliteCheck, target: Target) -> None:
    sqlite.verify(check, target)
