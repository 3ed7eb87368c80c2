"""pytest plugin for bench_daily (`-p plugin_first_check`): when the first check starts.

Start-up (interpreter, imports, plugins, loading the descriptions, collection) ends where the
first test's setup begins; the parent knows when it started the process, so this only writes
time.time() of that moment to the file named by BENCH_FIRST_CHECK_FILE.
"""

from __future__ import annotations

import os
import time

import pytest

_written = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _written
    path = os.environ.get("BENCH_FIRST_CHECK_FILE")
    if path and not _written:
        _written = True
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(repr(time.time()))
