"""Shared fixtures of the project's own tests (run with `pytest -p no:runbook selftests`)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from runbook.host.target import Target
from runbook.secrets import SECRETS
from selftests.data_servers import Postgres, Redis, start_postgres, start_redis
from selftests.readers_kit import serve_health
from selftests.sshd import LoopbackSshd, sshd_for_session


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster with the Map v12 database, for the data kinds' tests."""
    yield from start_postgres()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    """A real sshd on loopback letting root in with a key of its own (transports, tunnels)."""
    yield from sshd_for_session(tmp_path_factory)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    """A redis-server with a password on loopback, for the data kinds' tests."""
    yield from start_redis()


@pytest.fixture(scope="session")
def health() -> Iterator[ThreadingHTTPServer]:
    """A /health endpoint on loopback answering 200: readers-app's health check (selftests.readers_kit)."""
    server = serve_health()
    yield server
    server.shutdown()
    server.server_close()
