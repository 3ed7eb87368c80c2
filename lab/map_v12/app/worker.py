"""Stand-in for Map v12's `worker`: background jobs plus a Redis Pub/Sub subscription.

The scheduler (main thread) ticks on its own; the listener thread subscribes to
MAP_EVENTS_CHANNEL and handles events. As in many real workers, the listener retries
only its first connection: when Redis drops the subscription later, the thread logs the
error and ends while the process keeps running, so `docker ps` still shows the worker up
but nothing listens on the channel (the runbook's "worker listens to Redis Pub/Sub").
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis

log = logging.getLogger("map.worker")
CHANNEL = os.environ.get("MAP_EVENTS_CHANNEL", "map:events")
TICK_SECONDS = 30


def subscribe() -> redis.client.PubSub:
    """The first subscription, retried until Redis answers (compose starts us alongside it)."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2)
    while True:
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(CHANNEL)
            return pubsub
        except redis.RedisError as exc:
            log.warning("redis not ready (%s), retrying", exc)
            time.sleep(1)


def listen() -> None:
    pubsub = subscribe()
    log.info("subscribed to %s", CHANNEL)
    try:
        for message in pubsub.listen():
            log.info("event on %s: %r", CHANNEL, message.get("data"))
    except redis.RedisError:
        log.exception("lost the subscription to %s", CHANNEL)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threading.Thread(target=listen, name="pubsub", daemon=True).start()
    while True:
        log.info("scheduler tick")
        time.sleep(TICK_SECONDS)


if __name__ == "__main__":
    main()
