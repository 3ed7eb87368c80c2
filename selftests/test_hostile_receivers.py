"""A webhook or Pushgateway that trickles or floods cannot hold or grow the run after its checks.

Both now go through runbook.host.http_client: one deadline over the whole exchange (httpx's and
urllib's are per read: a byte every 2 s held the run 90-120 s past its checks) and a capped body
(an endless answer grew the runner to 600 MB).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Gauge

from runbook.readers import export, notify


class Receiver(BaseHTTPRequestHandler):
    mode = "trickle"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self._answer()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self._answer()

    def _answer(self) -> None:
        try:
            if self.mode == "trickle":
                self.wfile.write(b"H")
                for _ in range(60):  # a byte every 2 s: two minutes of headers
                    time.sleep(2)
                    self.wfile.write(b"T")
                    self.wfile.flush()
            else:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                chunk = b"x" * 65536
                for _ in range(20_000):  # 1.3 GB, were it read whole
                    self.wfile.write(chunk)
        except OSError:
            return

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(params=["trickle", "flood"])
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    handler = type("Handler", (Receiver,), {"mode": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", request.param
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_webhook_has_one_deadline_and_a_capped_answer(receiver: tuple[str, str]) -> None:
    url, mode = receiver
    started = time.monotonic()
    problem = notify.send_webhook(url, {"run": "x"})
    assert time.monotonic() - started < 60  # the trickle would take 120 s
    if mode == "trickle":
        assert problem is not None and "not delivered" in problem
    else:
        assert problem is None  # a 200 is a delivery, whatever the body; the body was cut


@pytest.mark.slow
def test_a_pushgateway_has_one_deadline_and_a_capped_answer(receiver: tuple[str, str]) -> None:
    url, mode = receiver
    registry = CollectorRegistry()
    Gauge("runbook_checks", "checks", registry=registry).set(1)
    started = time.monotonic()
    if mode == "trickle":
        with pytest.raises(OSError, match="Pushgateway"):
            export.push(url.removesuffix("/hook"), registry, "daily")
    else:
        export.push(url.removesuffix("/hook"), registry, "daily")
    assert time.monotonic() - started < 60
