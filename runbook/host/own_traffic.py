"""The suite's own HTTP requests that took long, so that a service is not blamed for them.

A service that counts its slow requests (Loyalty's `http_slow_requests_total`, over
ALERT_HTTP_SLOW_THRESHOLD_MS) counts the suite's too: on a busy runner a health check or a
load probe may take a second, and it stays in the service's 10-minute window for this run
and the next ones. Every request the runner sends that takes at least KEPT_FROM seconds (or
gets no answer) is noted here by origin and the moment it ended; after each check they go
to the store beside the reports (samples.json, `own_requests`), so overlapping and later
runs see them too. A `rates` check with `own_requests:` leaves out those in its window that
the runner saw slower than the service's threshold: an upper bound, since the service saw
each request at most as slow as the runner did. A command that talks to the service itself
(a smoke script's curls, `requests_to:`) is noted as a client busy for its whole time: it may
have sent as many slow requests as the threshold fits in that time, and no more.
"""

from __future__ import annotations

import math
import threading
import time
from urllib.parse import urlsplit

from runbook.host.samples import STORE, OwnRequest

KEPT_FROM = 0.05  # seconds: no service calls a request this fast slow
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """'https://api.example.com:443': what a request and a check's `own_requests.url` share."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        return ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


class Ledger:
    """This process's slow requests not yet written to the store (requests run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, list[OwnRequest]] = {}

    def note(self, url: str, seconds: float, *, sequential: bool = False) -> None:
        """A request to `url` that ended now after `seconds` (its timeout when it got no answer);
        `sequential`: a command that sent its requests there one at a time ended now."""
        if seconds < KEPT_FROM:
            return
        origin = origin_of(url)
        if origin:
            with self._lock:
                self._pending.setdefault(origin, []).append(OwnRequest(time.time(), seconds, sequential))

    def flush(self) -> None:
        """Write what is pending to the store (nothing to do, no file touched, when none is)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending and STORE.folder is not None:
            STORE.record_own_requests(pending)


LEDGER = Ledger()


def slower_than(url: str, threshold_seconds: float, since: float) -> int:
    """How many of the suite's requests to `url`'s origin ended after `since` (wall clock) and
    took longer than the threshold as the runner measured them, this run's and earlier ones'."""
    LEDGER.flush()
    if STORE.folder is None:
        return 0
    kept = [request for request in STORE.own_requests(origin_of(url)) if request.time >= since]
    return sum(_slow_ones(request, threshold_seconds) for request in kept)


def _slow_ones(request: OwnRequest, threshold_seconds: float) -> int:
    """How many requests over the threshold it was, or may have been (a sequential client sends
    one after another: no more slow ones than the threshold fits in its time)."""
    if request.sequential:
        return math.floor(request.seconds / threshold_seconds) if threshold_seconds > 0 else 0
    return 1 if request.seconds > threshold_seconds else 0
