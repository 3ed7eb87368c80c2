"""Checks run ahead in threads while pytest rewrites PYTEST_CURRENT_TEST in the main thread.

Seen on CI: map-v12's metrics-not-public turned red with "KeyError: 'PYTEST_CURRENT_TEST'"
(httpx read the proxy variables while the key was deleted). These tests make that churn on
purpose and copy the environment, and make HTTP clients, meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from runbook.host import http_client
from runbook.host.processes import environment_now

KEY = "RUNBOOK_SELFTEST_CHURN"


@pytest.fixture
def churn() -> Iterator[None]:
    """Set and delete one variable as fast as the main thread of pytest would, only more often."""
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            os.environ[KEY] = "x" * 64
            os.environ.pop(KEY, None)

    worker = threading.Thread(target=flip, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()
        os.environ.pop(KEY, None)


def test_a_copy_of_the_environment_survives_a_variable_that_comes_and_goes(churn: None) -> None:
    for _ in range(5_000):
        copy = environment_now()
        assert "PATH" in copy


@pytest.mark.slow
def test_an_http_client_is_made_while_a_variable_comes_and_goes(churn: None) -> None:
    for _ in range(20):
        http_client._client().close()
