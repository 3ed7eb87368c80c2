"""pytest plugin for bench_vs_ssh (`-p plugin_stock_ssh`): ssh:// through stock testinfra, counted.

With BENCH_STOCK_SSH=1, hosts written ssh:// go through testinfra.get_host (testinfra's own
SshBackend: an `ssh` process, so a new SSH connection, per command) instead of the suite's
process transport: the suite's table maps the scheme to its fallback, as for any testinfra
scheme it has no class of its own for. Either way, every call of SshBackend.run_ssh is counted
and the count, with the table's entry, is written to BENCH_SSH_LOG at the end: proof of which
way the run went.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from testinfra.backend.ssh import SshBackend

import runbook.host.transports as transports

if os.environ.get("BENCH_STOCK_SSH") == "1":
    transports.TRANSPORTS["ssh"] = transports.FALLBACK

_calls = [0]
_lock = threading.Lock()
_original = SshBackend.run_ssh


def _counted(self: SshBackend, command: str) -> Any:
    with _lock:
        _calls[0] += 1
    return _original(self, command)


SshBackend.run_ssh = _counted  # type: ignore[method-assign]


def pytest_unconfigure() -> None:
    path = os.environ.get("BENCH_SSH_LOG")
    if path:
        found = {"ssh_transport": transports.TRANSPORTS["ssh"], "testinfra_ssh_commands": _calls[0]}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(found, handle)
