"""Stand-in for Map v12's chat bot: calls the server with BOT_API_KEY, as the runbook's incident 4.

Every few seconds it calls `GET /api/bot/ping` on web with its BOT_API_KEY in the
X-Bot-Api-Key header and logs the outcome. When its key differs from the server's, every
call is refused (401) and says so in its log: the bot has stopped talking to the server.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request

log = logging.getLogger("map.bot")
PERIOD_SECONDS = 3


def call_server(url: str, key: str) -> None:
    request = urllib.request.Request(url, headers={"X-Bot-Api-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            log.debug("bot->server ok (%s)", response.status)
    except urllib.error.HTTPError as exc:
        log.error("bot->server call failed: HTTP %s %s", exc.code, exc.reason)
    except OSError as exc:
        log.warning("bot->server unreachable: %s", exc)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = os.environ.get("SERVER_URL", "http://web:8000").rstrip("/") + "/api/bot/ping"
    key = os.environ.get("BOT_API_KEY", "")
    log.info("bot started, server %s", url)
    while True:
        call_server(url, key)
        time.sleep(PERIOD_SECONDS)


if __name__ == "__main__":
    main()
