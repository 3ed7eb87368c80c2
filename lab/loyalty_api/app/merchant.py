"""A merchant's webhook endpoint, outside the Loyalty API: the far side of the outbox.

It answers as /data/mode says (`ok`: 200, `429`: too many requests, `500`: its own failure),
read at each request: a merchant's behaviour is not the API's, so the lab sets it from outside.
"""

from __future__ import annotations

import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODE = Path("/data/mode")
STATUS = {"ok": 200, "429": 429, "500": 500}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 1 << 16))
        mode = MODE.read_text().strip() if MODE.exists() else "ok"
        body = b'{"received": true}'
        self.send_response(STATUS.get(mode, 200))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1: SIGTERM needs a handler
ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
