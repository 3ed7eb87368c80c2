"""A call that cannot hang the run: for libraries with no total deadline of their own.

testinfra's backends and a PostgreSQL session may block for as long as the network
lets them; the call runs in a daemon thread that the caller stops waiting for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from runbook.errors import CommandTimeout

T = TypeVar("T")


def call_with_deadline(func: Callable[[], T], seconds: float, what: str) -> T:
    """func's result or its exception; CommandTimeout when it has not returned after `seconds`."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True, name=f"runbook: {what}")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CommandTimeout(f"{what}: no answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
