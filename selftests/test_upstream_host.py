"""`upstream:` for a plain process on the host (no docker): why the proxy answers 502/504.

A stand-in proxy on loopback answers 502; the upstream is a port on this local:// host,
with a process name and a log file. Down (nothing listens, no such process, its last
error line) and up (a listener, this test's own python running) are both said.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks import http
from runbook.checks.http import HttpCheck
from runbook.errors import CheckFailed
from runbook.host.target import Target
from runbook.host.upstream import Upstream, diagnose
from selftests.data_servers import free_port  # a port of this worker's own block

COMMON: dict[str, Any] = {"title": "a check", "severity": "P1", "section": "3.", "remedy": "restart app"}


def target() -> Target:
    return Target("local", "local://", command_timeout=20, connect_timeout=5)


class BadGateway(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BadGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


@pytest.fixture
def app_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def app_log(tmp_path: Path) -> Path:
    log = tmp_path / "error.log"
    log.write_text(
        "[2026-12-07 00:50:00] INFO Booting worker\n"
        "[2026-12-07 00:51:03] ERROR Worker failed to boot: redis.exceptions.ConnectionError\n"
        "[2026-12-07 00:51:04] INFO Shutting down: Master\n"
    )
    return log


def test_a_dead_host_upstream_is_named_in_the_502(proxy: str, tmp_path: Path) -> None:
    port = free_port()
    upstream = {"port": port, "process": "no-such-app", "log": str(app_log(tmp_path))}
    check = HttpCheck(**COMMON, id="front", url=proxy, upstream=upstream)
    with pytest.raises(CheckFailed) as failed:
        http.verify(check, target())
    found = failed.value.found
    assert found.startswith("status 502 != 200 (")
    assert found.endswith(
        f"; upstream no-such-app:{port} down: nothing listens on port {port} on local://; "
        "no process named no-such-app runs; "
        "its log: [2026-12-07 00:51:03] ERROR Worker failed to boot: redis.exceptions.ConnectionError"
    )
    assert "Worker failed to boot" in failed.value.evidence[f"last error lines of {tmp_path}/error.log"]


def test_a_live_host_upstream_points_at_the_proxy(app_port: int, tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.log"
    quiet.write_text("INFO all good\n")
    program = Path(sys.executable).name  # this test's own interpreter runs
    why, evidence = diagnose(target(), Upstream(port=app_port, process=program, log=str(quiet)))
    assert why == (
        f"upstream {program}:{app_port} is up and accepts connections: "
        "the proxy's own configuration, its network to the upstream, or timeouts"
    )
    assert f"127.0.0.1:{app_port}" in evidence[f"listening on port {app_port} (ss)"]
    assert str(os.getpid()) in evidence[f"processes named {program}"].split()


def test_a_listening_upstream_with_errors_in_its_log(app_port: int, tmp_path: Path) -> None:
    why, _ = diagnose(target(), Upstream(port=app_port, log=str(app_log(tmp_path))))
    assert why.startswith(
        f"upstream host:{app_port} up: port {app_port} listens; its log: [2026-12-07 00:51:03]"
    )


@pytest.mark.slow
def test_host_fields_only_without_a_container() -> None:
    with pytest.raises(ValidationError, match="process and log describe a process on the host"):
        Upstream(service="web", port=8000, process="gunicorn")
    with pytest.raises(ValidationError, match="should match pattern"):
        Upstream(port=8000, process="-x gunicorn")
    assert Upstream(port=8000).on_host and not Upstream(service="web", port=8000).on_host
