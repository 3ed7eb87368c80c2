"""Stand-in for the Loyalty API's `worker`: delivers the outbox to merchants' webhooks.

With WORKERS_ENABLED=1 it takes due `pending` events (FOR UPDATE SKIP LOCKED), POSTs each to
its URL and counts the call in external_requests (provider, result, status) as the real
worker's metric does: 2xx delivered; 429 rate_limited, tried again later without counting an
attempt; another status http_error and a connection failure error, each an attempt, and the
third failed attempt makes the event `dead`. Without WORKERS_ENABLED=1 it only idles.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.error
import urllib.request

import psycopg2

MAX_ATTEMPTS = 3
COUNT = """
INSERT INTO external_requests (provider, result, status, count) VALUES (%s, %s, %s, 1)
ON CONFLICT (provider, result, status) DO UPDATE SET count = external_requests.count + 1
"""


def deliver(url: str, payload: str) -> tuple[str, str]:
    """(result, status) of one POST."""
    request = urllib.request.Request(
        url, data=payload.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return "ok", str(answer.status)
    except urllib.error.HTTPError as exc:
        return ("rate_limited" if exc.code == 429 else "http_error"), str(exc.code)
    except OSError:
        return "error", ""


def work_once(db: psycopg2.extensions.connection) -> int:
    with db, db.cursor() as cursor:
        cursor.execute(
            "SELECT id, provider, url, payload::text, attempts FROM outbox WHERE status = 'pending' "
            "AND next_attempt_at <= now() ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED"
        )
        events = cursor.fetchall()
        for event_id, provider, url, payload, attempts in events:
            result, status = deliver(url, payload)
            cursor.execute(COUNT, (provider, result, status))
            if result == "ok":
                cursor.execute("UPDATE outbox SET status = 'delivered' WHERE id = %s", (event_id,))
            elif result == "rate_limited":
                cursor.execute(
                    "UPDATE outbox SET next_attempt_at = now() + interval '2 seconds' WHERE id = %s",
                    (event_id,),
                )
            else:
                state = "dead" if attempts + 1 >= MAX_ATTEMPTS else "pending"
                cursor.execute(
                    "UPDATE outbox SET attempts = attempts + 1, status = %s, "
                    "next_attempt_at = now() + interval '1 second' WHERE id = %s",
                    (state, event_id),
                )
                if state == "dead":
                    print(
                        f"ERROR outbox event {event_id} dead after {MAX_ATTEMPTS} attempts "
                        f"({result} {status})"
                    )
    return len(events)


def main() -> None:
    # PID 1 of its container: without a handler SIGTERM is ignored and `docker stop` waits to kill.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    enabled = os.environ.get("WORKERS_ENABLED", "0") == "1"
    print(f"worker started (WORKERS_ENABLED={'1' if enabled else '0'})", flush=True)
    db = None
    while True:
        if not enabled:
            time.sleep(5)
            continue
        try:
            db = db or psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=3)
            if work_once(db) == 0:
                time.sleep(0.5)
        except psycopg2.Error as exc:
            print(f"ERROR worker database: {str(exc).strip()}", flush=True)
            if db is not None:
                db.close()
            db = None
            time.sleep(2)


if __name__ == "__main__":
    main()
