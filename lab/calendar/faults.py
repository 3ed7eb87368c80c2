"""The failures runbook ai-calendar-assistant.md describes, each injectable into the lab.

Every inject function returns only when the failure is observable from outside (bounded
waits). `expected_failures` is the prediction of which suite checks go red; heal undoes all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import os
import re
import shutil
import socket
import tarfile
import time
import urllib.error
from typing import Any

from lab.calendar import system as s
from lab.core import Fault, LabError, wait_until

BOT_GONE = frozenset(
    {
        "bot-running",
        "health",
        "bot-to-redis",
        "bot-to-radicale",
        "bot-db-wal",
        "bot-memory-usage",
        "bot-single-instance",
    }
)
ERROR_RE = re.compile(r"error|exception|traceback|critical", re.IGNORECASE)


def _error_lines(logs: str) -> list[str]:
    """Lines the runbook's `grep -i -E "(error|exception|traceback|critical)"` would count."""
    return [ln for ln in logs.splitlines() if ERROR_RE.search(ln)]


def _book(**updates: Any) -> None:
    """Remember what an injection changed, so heal can put it back."""
    state = s.fault_state()
    data = state.load()
    for key, items in updates.items():
        data.setdefault(key, [])
        data[key] += [i for i in items if i not in data[key]]
    state.save(data)


def _inspect(name: str) -> dict[str, Any]:
    """`docker inspect` of one container, as a dict."""
    with s.session() as dk:
        c = s.get_container(dk, name)
        if c is None:
            raise LabError(f"container {name} does not exist; run `python -m lab up`")
        return dict(c.attrs)


def _stop(name: str) -> None:
    with s.session() as dk:
        c = s.get_container(dk, name)
        if c is None:
            raise LabError(f"container {name} does not exist; run `python -m lab up`")
        c.stop(timeout=10)
    wait_until(lambda: _inspect(name)["State"]["Status"] == "exited", timeout=20, what=f"{name} to stop")


def _control(value: str) -> None:
    s.P.control.write_text(value + "\n")


def bot_down() -> None:
    _stop(s.BOT)


def restart_loop() -> None:
    _control("crash")
    with s.session() as dk:
        dk.api.restart(s.BOT, timeout=10)
    # Each start logs one traceback (4 lines the runbook's grep counts). Six restarts in,
    # docker's back-off (100 ms doubling) keeps it "restarting" for 6-13 s at a time, so a
    # checklist run that starts now sees `Restarting (1)` as `docker ps` would.
    wait_until(
        lambda: _inspect(s.BOT)["RestartCount"] >= 6 and _inspect(s.BOT)["State"]["Restarting"],
        timeout=60,
        what="telegram-bot to be restarting in a loop",
    )
    wait_until(
        lambda: len(_error_lines(s.bot_logs())) >= 12,
        timeout=30,
        what="start-up tracebacks in telegram-bot's logs",
    )


def oom() -> None:
    _control("oom")
    wait_until(
        lambda: _inspect(s.BOT)["RestartCount"] >= 1,
        timeout=60,
        what="telegram-bot to be OOM-killed and restarted",
    )
    wait_until(s.healthy, timeout=60, what="telegram-bot to be healthy again after the OOM kill")


def health_unhealthy() -> None:
    _control("unhealthy")
    wait_until(lambda: s.health()[0] == 503, timeout=15, what="/health to answer 503")


def _health_times_out() -> bool:
    try:
        s.health(timeout=2)
    except TimeoutError:
        return True
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, TimeoutError | socket.timeout)
    return False


def health_slow() -> None:
    _control("slow")
    wait_until(_health_times_out, timeout=20, what="/health to take longer than 2 s", interval=0.5)


def _disk_used() -> float:
    st = os.statvfs(s.HOST.disk)
    return 1 - st.f_bavail / st.f_blocks


def disk_full() -> None:
    st = os.statvfs(s.HOST.disk)
    total = st.f_blocks * st.f_frsize
    want = int(total * 0.95) - (st.f_blocks - st.f_bavail) * st.f_frsize
    if want > 0:
        with open(s.P.filler, "ab") as fh:
            os.posix_fallocate(fh.fileno(), 0, fh.tell() + want)
    wait_until(lambda: _disk_used() >= 0.94, timeout=5, what="the lab disk to be 95% full")


def error_burst() -> None:
    _control("errors")
    wait_until(
        lambda: len(_error_lines(s.bot_logs())) >= 25,
        timeout=20,
        what="the error burst in telegram-bot's logs",
    )


def stale_backup() -> None:
    """Last night's run did not happen: every archive of the last 26 h moves out of sight."""
    stash = s.P.state / "stash"
    stash.mkdir(parents=True, exist_ok=True)
    for arc in s.archives():
        if s.age_hours(arc) < 26:
            shutil.move(str(arc), stash / arc.name)
    arcs = s.archives()
    if arcs and s.age_hours(arcs[-1]) <= 25:
        raise LabError(f"newest backup {arcs[-1].name} is still fresh")


def _targz(files: dict[str, bytes], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(top)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tiny_backup() -> None:
    """The newest archive is a valid, encrypted tar.gz of an empty backup dir."""
    when = s.newest_time()
    dst = s.place_archive(s.encrypt(_targz({}, f"{when:%Y%m%d_%H%M%S}")), when)
    _book(injected=[dst.name])
    if dst.stat().st_size >= 1000:
        raise LabError(f"tiny archive came out at {dst.stat().st_size} bytes")


def corrupt_backup() -> None:
    """The newest archive decrypts fine but its gzip stream is damaged (CRC/tar check fails)."""
    source = next((a for a in reversed(s.archives()) if a.stat().st_size >= 1000), None)
    if source is None:
        raise LabError("no full-size archive to corrupt")
    plain = bytearray(s.decrypt(source))
    mid = len(plain) // 2
    for i in range(mid, min(mid + 64, len(plain) - 8)):
        plain[i] ^= 0xFF
    try:
        gzip.decompress(bytes(plain))
    except (OSError, EOFError, gzip.BadGzipFile):
        pass
    else:
        raise LabError("corrupting the archive left it readable")
    when = s.newest_time()
    dst = s.place_archive(s.encrypt(bytes(plain)), when)
    _book(injected=[dst.name])


def retention_broken() -> None:
    """Retention stopped working: a 40-day-old archive is still there."""
    arcs = s.archives()
    if not arcs:
        raise LabError("no archive to copy")
    night = dt.datetime.combine(dt.date.today() - dt.timedelta(days=40), dt.time(3, 0))
    dst = s.place_archive(arcs[-1].read_bytes(), night)
    _book(injected=[dst.name])


def cron_missing() -> None:
    s.write_crontab("# m h  dom mon dow   command\n")


def redis_down() -> None:
    _stop(s.REDIS)


def radicale_down() -> None:
    _stop(s.RADICALE)


def wal_off() -> None:
    s.set_journal_mode("delete")


def second_instance() -> None:
    with s.session() as dk:
        if s.get_container(dk, s.BOT2) is None:
            s.create_container(dk, s.second_bot_spec())
    wait_until(
        lambda: "database is locked" in s.bot_logs(),
        timeout=90,
        interval=0.5,
        what="'database is locked' in telegram-bot's logs",
    )


def env_missing_key() -> None:
    """YANDEX_GPT_FOLDER_ID dropped from .env and the bot redeployed from it."""
    s.write_server_files(strict=False)
    s.P.env.write_text(s.render_env(s.lab_secrets(), drop=["YANDEX_GPT_FOLDER_ID"]))
    with s.session() as dk:
        s.ensure_containers(dk, strict=False)
    wait_until(s.healthy, timeout=60, what="telegram-bot to be healthy after the redeploy")


def hand_made_bot() -> None:
    """Someone recreated the bot with a bare `docker run`: no restart policy, no memory limit."""
    bare = dataclasses.replace(s.specs()[s.BOT], restart_policy="no", mem_limit="", memswap_limit=None)
    with s.session() as dk:
        s.remove_container(dk, s.BOT)
        s.create_container(dk, bare)
    wait_until(s.healthy, timeout=60, what="the hand-made telegram-bot to be healthy")


def memory_high() -> None:
    _control("memory-high")

    def over_80_percent() -> bool:
        stats = _inspect_stats(s.BOT)
        return stats["memory_stats"].get("usage", 0) > 0.82 * stats["memory_stats"].get("limit", 1)

    wait_until(over_80_percent, timeout=30, what="telegram-bot to hold over 80% of its limit")


def _inspect_stats(name: str) -> dict[str, Any]:
    with s.session() as dk:
        return dict(dk.api.stats(name, stream=False))


def polling_missing() -> None:
    """The bot came up in webhook mode and never started polling (runbook 3.2)."""
    _control("webhook")
    with s.session() as dk:
        s.remove_container(dk, s.BOT)
        s.ensure_containers(dk, strict=False)
    wait_until(s.healthy, timeout=60, what="telegram-bot (webhook mode) to be healthy")


def _f(
    name: str,
    description: str,
    expected: set[str],
    inject: Any,
    recreate: tuple[str, ...] = (),
    restart_daemon: bool = False,
) -> Fault:
    return Fault(
        name, description, frozenset(expected), inject, frozenset(recreate), restart_daemon, system=s.NAME
    )


FAULTS: list[Fault] = [
    _f(
        "bot-down",
        "telegram-bot stopped (docker stop): the service is down (P1)",
        set(BOT_GONE),
        bot_down,
        (s.BOT,),
    ),
    _f(
        "restart-loop",
        "telegram-bot crashes at start-up (traceback, exit 1): Restarting (1) loop (§3.7)",
        {*BOT_GONE, "bot-restarts", "bot-errors"},
        restart_loop,
        (s.BOT,),
        True,
    ),
    _f(
        "oom",
        "telegram-bot exhausts its 1g limit, is OOM-killed (137) and restarted by docker",
        {"bot-no-crash", "bot-restarts"},
        oom,
        (s.BOT,),
        True,
    ),
    _f("health-unhealthy", '/health answers 503 {"status": "unhealthy"}', {"health"}, health_unhealthy),
    _f("health-slow", "/health takes 8 s to answer (curl --max-time 5 fails)", {"health"}, health_slow),
    _f("disk-full", "the server's disk is 95% full", {"disk-root"}, disk_full),
    _f(
        "error-burst",
        "a burst of 30 ERROR/CRITICAL/Traceback lines in telegram-bot's log",
        {"bot-errors"},
        error_burst,
        (s.BOT,),
    ),
    _f(
        "stale-backup",
        "last night's backup did not run: newest archive older than 25 h",
        {"backup-fresh"},
        stale_backup,
    ),
    # An empty backup also lacks what §4.1 says is backed up, which backup-integrity checks.
    _f(
        "tiny-backup",
        "newest archive is valid but under 1000 bytes (empty backup)",
        {"backup-size", "backup-integrity"},
        tiny_backup,
    ),
    _f(
        "corrupt-backup",
        "newest archive decrypts but its gzip/tar stream is corrupt",
        {"backup-integrity"},
        corrupt_backup,
    ),
    _f(
        "retention-broken",
        "a 40-day-old archive survived the 30-day retention",
        {"backup-retention"},
        retention_broken,
    ),
    _f("cron-missing", "the 03:00 backup line is gone from root's crontab", {"backup-cron"}, cron_missing),
    _f(
        "redis-down",
        "calendar-redis stopped (redis.exceptions.ConnectionError, §3.4)",
        {"redis-running", "redis-ping", "bot-to-redis", "redis-memory-usage"},
        redis_down,
        (s.REDIS,),
    ),
    _f(
        "radicale-down",
        "radicale-calendar stopped (CalDAV unavailable, §3.5)",
        {"radicale-running", "radicale-http", "bot-to-radicale", "radicale-memory-usage"},
        radicale_down,
        (s.RADICALE,),
    ),
    _f("wal-off", "calendar.db switched from WAL to journal_mode=DELETE (§3.1)", {"bot-db-wal"}, wal_off),
    _f(
        "second-instance",
        "a second bot container (telegram-bot-2) shares the DB: 'database is locked'",
        {"bot-single-instance", "bot-db-locked"},
        second_instance,
        (s.BOT,),
    ),
    _f(
        "hand-made-bot",
        "telegram-bot recreated by hand (docker run): no restart policy, no memory limit",
        {"bot-restart-policy", "bot-memory-limit"},
        hand_made_bot,
        (s.BOT,),
    ),
    _f(
        "memory-high",
        "telegram-bot holds ~850 MB of its 1g limit (over 80%, §3.3)",
        {"bot-memory-usage"},
        memory_high,
        (s.BOT,),
    ),
    _f(
        "polling-missing",
        "telegram-bot started in webhook mode: no 'Start polling' in its logs (§3.2)",
        {"bot-polling"},
        polling_missing,
        (s.BOT,),
    ),
    _f(
        "env-missing-key",
        "YANDEX_GPT_FOLDER_ID missing from .env (bot redeployed without it)",
        {"bot-env"},
        env_missing_key,
        (s.BOT,),
    ),
]
