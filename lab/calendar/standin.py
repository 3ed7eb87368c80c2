"""Stand-in for Grafana or Loki (no Debian package): their health endpoints, as they answer.

    python3 standin.py grafana 3000   # GET /api/health -> {"database": "ok", ...}
    python3 standin.py loki 3100      # GET /ready -> "ready"

Everything else is 404. The real services would be checked by the same URLs.
"""

from __future__ import annotations

import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = {
    "grafana": {
        "/api/health": (
            "application/json",
            json.dumps({"commit": "lab-standin", "database": "ok", "version": "10.4.0"}),
        )
    },
    "loki": {"/ready": ("text/plain", "ready\n")},
}


def handler(role: str) -> type[BaseHTTPRequestHandler]:
    answers = ANSWERS[role]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = answers.get(self.path.split("?", 1)[0])
            kind, body = found or ("text/plain", "404 page not found\n")
            data = body.encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{role}: {format % args}\n")

    return Handler


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    # As PID 1 of its container it would ignore `docker stop`'s SIGTERM and wait for the KILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", port), handler(role)).serve_forever()
