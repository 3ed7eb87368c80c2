"""The failures runbook ai-calendar-assistant.md describes, each injectable into the lab.

Every inject function returns only when the failure is observable from outside (bounded
waits). `fails` is the prediction of which suite checks go red; heal undoes all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import os
import re
import socket
import urllib.error
import zlib
from pathlib import Path
from typing import Any

from lab import containers
from lab.backups import age_hours, decrypt, encrypt, targz
from lab.calendar import monitoring
from lab.calendar import system as calendar
from lab.core import Fault, LabError, fault, wait_until

BOT_GONE = frozenset(
    {
        "bot-running",
        "health",
        "health-status",
        "health-fields",
        "bot-to-redis",
        "bot-to-radicale",
        "bot-radicale-http",
        "bot-memory-usage",
        "bot-single-instance",
    }
)
# What a crash-looping bot may pass: between two crashes it runs for a moment. `docker ps
# --filter status=running` then counts it as the one instance; its memory, read from its cgroup
# at once, is within its limit; `docker exec telegram-bot curl http://radicale:5232` gets in and
# Radicale answers (seen in make test: the bot did reach Radicale at that moment). Its TCP checks
# (bot-to-redis, bot-to-radicale) also exec into it, but each opens a shell and a socket: they
# may land in the moment too.
RUNNING_FOR_A_MOMENT = frozenset(
    {"bot-single-instance", "bot-memory-usage", "bot-radicale-http", "bot-to-redis", "bot-to-radicale"}
)
ERROR_RE = re.compile(r"error|exception|traceback|critical", re.IGNORECASE)


def _error_lines(logs: str) -> list[str]:
    """Lines the runbook's `grep -i -E "(error|exception|traceback|critical)"` would count."""
    return [line for line in logs.splitlines() if ERROR_RE.search(line)]


def _inspect(name: str) -> dict[str, Any]:
    with calendar.HOST.dockerd.session() as client:
        return containers.inspect(client, name)


def _bot_logs() -> str:
    with calendar.HOST.dockerd.session() as client:
        return containers.logs(client, calendar.BOT)


def _stop(name: str) -> None:
    with calendar.HOST.dockerd.session() as client:
        containers.stop_and_wait(client, name)


# Modes the bot stand-in keeps playing while its control file holds them (bot.py); the others it
# plays once and clears the file.
LASTING_MODES = {"crash", "webhook", "unhealthy", "slow"}


def _control(value: str) -> None:
    """Tell the bot stand-in which failure to play (see bot.py).

    It plays one lasting mode at a time: a second fault writing its mode over a lasting one would
    end the first (a crash loop healed by "unhealthy"), so that pair is refused, not faked.
    """
    try:
        current = calendar.PATHS.control.read_text().strip()
    except FileNotFoundError:
        current = ""
    if current in LASTING_MODES and current != value:
        raise LabError(
            f"the bot stand-in already plays {current!r}; {value!r} would end it (one mode at a time)"
        )
    calendar.PATHS.control.write_text(value + "\n")


def _place_newest(data: bytes) -> Path:
    """An archive that sorts newest, booked so heal removes it."""
    archive = calendar.backups().place(data, calendar.backups().after_newest())
    calendar.BOOK.note(injected=[archive.name])
    return archive


def bot_down() -> None:
    _stop(calendar.BOT)


def restart_loop() -> None:
    _control("crash")
    with calendar.HOST.dockerd.session() as client:
        client.api.restart(calendar.BOT, timeout=10)
    # Each start logs one traceback (4 lines the runbook's grep counts). Six restarts in,
    # docker's back-off (100 ms doubling) keeps it "restarting" for 6-13 s at a time, so a
    # checklist run that starts now sees `Restarting (1)` as `docker ps` would.
    wait_until(
        lambda: _inspect(calendar.BOT)["RestartCount"] >= 6 and _inspect(calendar.BOT)["State"]["Restarting"],
        timeout=60,
        what="telegram-bot to be restarting in a loop",
    )
    wait_until(
        lambda: len(_error_lines(_bot_logs())) >= 12,
        timeout=30,
        what="start-up tracebacks in telegram-bot's logs",
    )


def oom() -> None:
    _control("oom")
    wait_until(
        lambda: _inspect(calendar.BOT)["RestartCount"] >= 1,
        timeout=60,
        what="telegram-bot to be OOM-killed and restarted",
    )
    wait_until(calendar.healthy, timeout=60, what="telegram-bot to be healthy again after the OOM kill")


def health_unhealthy() -> None:
    _control("unhealthy")
    wait_until(lambda: calendar.health()[0] == 503, timeout=15, what="/health to answer 503")


def _health_times_out() -> bool:
    try:
        calendar.health(timeout=2)
    except TimeoutError:
        return True
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, TimeoutError | socket.timeout)
    return False


def health_slow() -> None:
    _control("slow")
    wait_until(_health_times_out, timeout=20, what="/health to take longer than 2 s", interval=0.5)


def _disk_used() -> float:
    stat = os.statvfs(calendar.HOST.disk)
    return 1 - stat.f_bavail / stat.f_blocks


def disk_full() -> None:
    stat = os.statvfs(calendar.HOST.disk)
    total = stat.f_blocks * stat.f_frsize
    want = int(total * 0.95) - (stat.f_blocks - stat.f_bavail) * stat.f_frsize
    if want > 0:
        with open(calendar.PATHS.filler, "ab") as filler:
            os.posix_fallocate(filler.fileno(), 0, filler.tell() + want)
    wait_until(lambda: _disk_used() >= 0.94, timeout=5, what="the lab disk to be 95% full")


def error_burst() -> None:
    _control("errors")
    wait_until(
        lambda: len(_error_lines(_bot_logs())) >= 25,
        timeout=20,
        what="the error burst in telegram-bot's logs",
    )


def stale_backup() -> None:
    """Last night's run did not happen: every archive of the last 26 h moves out of sight."""
    calendar.backups().hide_younger_than(26, calendar.PATHS.stash)
    archives = calendar.backups().archives()
    if archives and age_hours(archives[-1]) <= 25:
        raise LabError(f"newest backup {archives[-1].name} is still fresh")


def tiny_backup() -> None:
    """The newest archive is a valid, encrypted tar.gz of an empty backup dir."""
    when = calendar.backups().after_newest()
    empty = targz({}, top=f"{when:%Y%m%d_%H%M%S}")
    archive = _place_newest(encrypt(empty, passphrase=calendar.passphrase()))
    if archive.stat().st_size >= 1000:
        raise LabError(f"tiny archive came out at {archive.stat().st_size} bytes")


def corrupt_backup() -> None:
    """The newest archive decrypts fine but its gzip stream is damaged (CRC/tar check fails)."""
    archives = calendar.backups().archives()
    source = next((archive for archive in reversed(archives) if archive.stat().st_size >= 1000), None)
    if source is None:
        raise LabError("no full-size archive to corrupt")
    plain = bytearray(decrypt(source, passphrase=calendar.passphrase()))
    middle = len(plain) // 2
    for index in range(middle, min(middle + 64, len(plain) - 8)):
        plain[index] ^= 0xFF
    try:
        gzip.decompress(bytes(plain))
    except (OSError, EOFError, zlib.error):  # BadGzipFile is an OSError; a bad deflate stream, zlib.error
        pass
    else:
        raise LabError("corrupting the archive left it readable")
    _place_newest(encrypt(bytes(plain), passphrase=calendar.passphrase()))


def retention_broken() -> None:
    """Retention stopped working: a 40-day-old archive is still there."""
    archives = calendar.backups().archives()
    if not archives:
        raise LabError("no archive to copy")
    night = dt.datetime.combine(dt.date.today() - dt.timedelta(days=40), dt.time(3, 0))
    archive = calendar.backups().place(archives[-1].read_bytes(), night)
    calendar.BOOK.note(injected=[archive.name])


def cron_missing() -> None:
    calendar.write_crontab("# m h  dom mon dow   command\n")


def redis_down() -> None:
    _stop(calendar.REDIS)
    wait_until(
        lambda: "redis.exceptions.ConnectionError" in _bot_logs(),
        timeout=60,
        interval=1,
        what="redis.exceptions.ConnectionError in telegram-bot's logs",
    )


def _recreate(name: str, **changes: Any) -> None:
    """The container made again from its spec with `changes`, as a hand-edited compose file would."""
    spec = dataclasses.replace(calendar.specs()[name], **changes)
    with calendar.HOST.dockerd.session() as client:
        containers.remove_container(client, name)
        containers.create_container(client, spec)


def redis_exposed() -> None:
    """Someone published Redis (ports: 6379:6379): reachable from outside, the runbook says internal."""
    _recreate(calendar.REDIS, ports={6379: 6379})
    with calendar.HOST.dockerd.session() as client:
        wait_until(lambda: calendar.redis_pong(client), timeout=30, what="PONG from calendar-redis")


def radicale_volume_lost() -> None:
    """radicale-calendar recreated without its named volume: its calendars in the container layer."""
    spec = calendar.specs()[calendar.RADICALE]
    binds = [bind for bind in spec.binds if not bind.endswith(":/data:rw")]
    _recreate(calendar.RADICALE, binds=binds)
    with calendar.HOST.dockerd.session() as client:
        wait_until(lambda: calendar.radicale_answers(client), timeout=30, what="radicale on :5232")


def radicale_refused() -> None:
    _control("radicale-refused")
    wait_until(
        lambda: "Connection refused" in _bot_logs(),
        timeout=20,
        what="'Connection refused' to Radicale in telegram-bot's logs",
    )


def radicale_down() -> None:
    _stop(calendar.RADICALE)


def prometheus_down() -> None:
    _stop(monitoring.PROMETHEUS)


def loki_down() -> None:
    _stop(monitoring.LOKI)


def second_instance() -> None:
    with calendar.HOST.dockerd.session() as client:
        if containers.get_container(client, calendar.BOT2) is None:
            containers.create_container(client, calendar.second_bot_spec())
    wait_until(
        lambda: "database is locked" in _bot_logs(),
        timeout=90,
        interval=0.5,
        what="'database is locked' in telegram-bot's logs",
    )


def env_missing_key() -> None:
    """YANDEX_GPT_FOLDER_ID dropped from .env and the bot redeployed from it."""
    calendar.write_server_files(strict=False)
    calendar.PATHS.env.write_text(calendar.render_env(calendar.lab_secrets(), drop=["YANDEX_GPT_FOLDER_ID"]))
    with calendar.HOST.dockerd.session() as client:
        containers.reconcile(client, calendar.specs().values(), strict=False)
    wait_until(calendar.healthy, timeout=60, what="telegram-bot to be healthy after the redeploy")


def hand_made_bot() -> None:
    """Someone recreated the bot with a bare `docker run`: no restart policy, no memory limit."""
    bare = dataclasses.replace(
        calendar.specs()[calendar.BOT], restart_policy="no", mem_limit="", memswap_limit=None
    )
    with calendar.HOST.dockerd.session() as client:
        containers.remove_container(client, calendar.BOT)
        containers.create_container(client, bare)
    wait_until(calendar.healthy, timeout=60, what="the hand-made telegram-bot to be healthy")


def memory_high() -> None:
    _control("memory-high")

    def over_80_percent() -> bool:
        with calendar.HOST.dockerd.session() as client:
            memory = dict(client.api.stats(calendar.BOT, stream=False))["memory_stats"]
        return memory.get("usage", 0) > 0.82 * memory.get("limit", 1)

    wait_until(over_80_percent, timeout=30, what="telegram-bot to hold over 80% of its limit")


def polling_missing() -> None:
    """The bot came up in webhook mode and never started polling (runbook 3.2)."""
    _control("webhook")
    with calendar.HOST.dockerd.session() as client:
        containers.remove_container(client, calendar.BOT)
        containers.reconcile(client, calendar.specs().values(), strict=False)
    wait_until(calendar.healthy, timeout=60, what="telegram-bot (webhook mode) to be healthy")


BOT = calendar.BOT
# The backup faults each make "the newest archive" what they need (placed now, or every fresh one
# moved out of sight): injected after another of them, the newest archive is the later one's.
NEWEST_WINS = "the newest archive is the later fault's (placed after, or the fresh ones hidden)"
# Faults that put a new telegram-bot container in place of the running one.
REDEPLOYED = (
    "it replaces the telegram-bot container: what the earlier fault left in the old one (its memory, "
    "its log) is gone"
)
FAULTS: list[Fault] = [
    fault(
        "redis-exposed",
        "calendar-redis recreated with ports 6379:6379: published on 0.0.0.0, not internal",
        fails={"redis-ports"},
        inject=redis_exposed,
        recreate={calendar.REDIS},
    ),
    fault(
        "radicale-volume-lost",
        "radicale-calendar recreated without ai-calendar-assistant_radicale-data at /data",
        fails={"radicale-volume"},
        inject=radicale_volume_lost,
        recreate={calendar.RADICALE},
    ),
    fault(
        "radicale-refused",
        "Radicale refuses the bot's CalDAV calls: 'Connection refused' in its logs (§3.5)",
        fails={"bot-radicale-refused"},
        inject=radicale_refused,
        recreate={BOT},
    ),
    fault(
        "bot-down",
        "telegram-bot stopped (docker stop): the service is down (P1)",
        fails=BOT_GONE,
        inject=bot_down,
        recreate={BOT},
    ),
    fault(
        "restart-loop",
        "telegram-bot crashes at start-up (traceback, exit 1): Restarting (1) loop (§3.7)",
        fails={
            *BOT_GONE - RUNNING_FOR_A_MOMENT,
            "bot-restarts",
            "bot-errors",
            "bot-polling",
        },
        may_fail=RUNNING_FOR_A_MOMENT,
        inject=restart_loop,
        recreate={BOT},
        restart_daemon=True,
    ),
    fault(
        "oom",
        "telegram-bot exhausts its 1g limit, is OOM-killed (137) and restarted by docker",
        fails={"bot-no-crash", "bot-restarts"},
        inject=oom,
        recreate={BOT},
        restart_daemon=True,
    ),
    fault(
        "health-unhealthy",
        '/health answers 503 {"status": "unhealthy"}: it answers (health, P1, passes), not healthy',
        fails={"health-status"},
        inject=health_unhealthy,
    ),
    fault(
        "health-slow",
        "/health takes 8 s to answer (curl --max-time 5 fails): no answer for any of its three checks",
        fails={"health", "health-status", "health-fields"},
        inject=health_slow,
    ),
    fault("disk-full", "the server's disk is 95% full", fails={"disk-root"}, inject=disk_full),
    fault(
        "error-burst",
        "a burst of 30 ERROR/CRITICAL/Traceback lines in telegram-bot's log, YandexGPT API errors among them",
        fails={"bot-errors", "bot-yandexgpt-errors"},
        inject=error_burst,
        recreate={BOT},
    ),
    fault(
        "stale-backup",
        "last night's backup did not run: newest archive older than 25 h",
        fails={"backup-fresh"},
        inject=stale_backup,
        replaces={"tiny-backup": NEWEST_WINS, "corrupt-backup": NEWEST_WINS},
    ),
    # An empty backup also lacks what §4.1 says is backed up, which backup-integrity checks.
    fault(
        "tiny-backup",
        "newest archive is valid but under 1000 bytes (empty backup)",
        fails={"backup-size", "backup-integrity"},
        inject=tiny_backup,
        replaces={"stale-backup": NEWEST_WINS, "corrupt-backup": NEWEST_WINS},
    ),
    fault(
        "corrupt-backup",
        "newest archive decrypts but its gzip/tar stream is corrupt",
        fails={"backup-integrity"},
        inject=corrupt_backup,
        replaces={"stale-backup": NEWEST_WINS, "tiny-backup": NEWEST_WINS},
    ),
    fault(
        "retention-broken",
        "a 40-day-old archive survived the 30-day retention",
        fails={"backup-retention"},
        inject=retention_broken,
    ),
    fault(
        "cron-missing",
        "the 03:00 backup line is gone from root's crontab",
        fails={"backup-cron"},
        inject=cron_missing,
    ),
    fault(
        "redis-down",
        "calendar-redis stopped: the bot logs redis.exceptions.ConnectionError (§3.4)",
        fails={"redis-running", "redis-ping", "bot-to-redis", "redis-memory-usage", "bot-redis-errors"},
        inject=redis_down,
        recreate={calendar.REDIS, BOT},
    ),
    fault(
        "radicale-down",
        "radicale-calendar stopped (CalDAV unavailable, §3.5)",
        fails={
            "radicale-running",
            "radicale-http",
            "bot-to-radicale",
            "bot-radicale-http",
            "radicale-memory-usage",
        },
        inject=radicale_down,
        recreate={calendar.RADICALE},
    ),
    fault(
        "prometheus-down",
        "the monitoring stack's prometheus stopped: /-/healthy refused on :9090",
        fails={"prometheus-healthy"},
        inject=prometheus_down,
        recreate={monitoring.PROMETHEUS},
    ),
    fault(
        "loki-down",
        "the monitoring stack's loki stopped: /ready refused on :3100",
        fails={"loki-ready"},
        inject=loki_down,
        recreate={monitoring.LOKI},
    ),
    fault(
        "second-instance",
        "a second bot container (telegram-bot-2) shares the DB: 'database is locked'",
        fails={"bot-single-instance", "bot-db-locked"},
        inject=second_instance,
        recreate={BOT},
    ),
    fault(
        "hand-made-bot",
        "telegram-bot recreated by hand (docker run): no restart policy, no memory limit",
        fails={"bot-memory-limit"},
        inject=hand_made_bot,
        recreate={BOT},
        replaces={"memory-high": REDEPLOYED, "second-instance": REDEPLOYED},
    ),
    fault(
        "memory-high",
        "telegram-bot holds ~850 MB of its 1g limit (over 80%, §3.3)",
        fails={"bot-memory-usage"},
        inject=memory_high,
        recreate={BOT},
    ),
    fault(
        "polling-missing",
        "telegram-bot started in webhook mode: no 'Start polling' in its logs (§3.2)",
        fails={"bot-polling"},
        inject=polling_missing,
        recreate={BOT},
        replaces={"hand-made-bot": REDEPLOYED, "memory-high": REDEPLOYED, "second-instance": REDEPLOYED},
    ),
    fault(
        "env-missing-key",
        "YANDEX_GPT_FOLDER_ID missing from .env (bot redeployed without it)",
        fails={"bot-env-yandexgpt"},
        inject=env_missing_key,
        recreate={BOT},
        replaces={"hand-made-bot": REDEPLOYED, "memory-high": REDEPLOYED, "second-instance": REDEPLOYED},
    ),
]
