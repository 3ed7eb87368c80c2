"""Loggers made in the checks' threads while pytest lists every logger in the main thread.

pytest attaches its log capture at each test phase by iterating
`logging.root.manager.loggerDict.values()` without logging's lock (`catching_logs.__enter__`).
Checks run ahead in threads (runbook.run.prefetch) import httpx, psycopg or paramiko on first
use, and paramiko names a logger per connection: a logger made at that moment failed the test
in its turn with "RuntimeError: dictionary changed size during iteration" (a healthy check
red: loyalty `live` once in make test, vpn `xray-running` once before). The registry's values
are given as a list made in one step (atomic under the GIL), so such an iteration never sees
the dictionary change. Nothing else changes: it is still the same dict to logging itself.
"""

from __future__ import annotations

import logging
from typing import Any


class SnapshotValues(dict):  # type: ignore[type-arg]
    """loggerDict whose `values()` is a list taken at once, not a live view."""

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(dict.values(self))


def install() -> None:
    """Once per process, before any check runs in a thread; idempotent."""
    manager = logging.root.manager
    with logging._lock:  # type: ignore[attr-defined]  # the lock logging's getLogger holds
        if not isinstance(manager.loggerDict, SnapshotValues):
            manager.loggerDict = SnapshotValues(manager.loggerDict)
