"""The AI Calendar Assistant server of the runbook, rebuilt on this machine.

One lab host (netns rbs-calendar, 198.18.0.2) runs dockerd with the three containers of
the runbook (telegram-bot, calendar-redis, radicale-calendar), an sshd whose /root holds
the project dir, the nightly backups and root's crontab, and a 64 MiB tmpfs as its disk.
This module is the topology and the stand-in services; `CalendarSystem.converge` brings
them to healthy. The fault table lives in faults.py, the bot stand-in in bot.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import grp
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import docker

from lab import addresses, envfile
from lab.backups import BackupDir, age_hours
from lab.calendar import monitoring
from lab.containers import (
    SHORT_DNS_RESOLV_CONF,
    ComposeProject,
    Spec,
    container_components,
    ensure_hostroot_image,
    exec_output,
    reconcile,
    remove_container,
)
from lab.core import (
    Component,
    Fault,
    LabError,
    random_token,
    require,
    wait_until,
    write_file,
)
from lab.envfile import parse_env
from lab.host import Host
from lab.http_probe import get_json
from lab.sqlite import journal_mode, set_journal_mode
from lab.system import FaultBook, HealPlan, LabSystem, state_dir

NAME = "ai-calendar-assistant"
# The server's /usr/local/sbin is its own: it holds the `df` that reports the 64 MB disk as "/".
SBIN = "/usr/local/sbin"
HOST = Host(
    system=NAME,
    netns="rbs-calendar",
    machine_if="rbs-cal0",
    private_binds=(
        ("root", "/root"),
        ("crontabs", "/var/spool/cron/crontabs"),
        ("log", "/var/log"),
        ("sbin", SBIN),
    ),
)
BOOK = FaultBook(NAME)

WORKDIR = "/root/ai-calendar-assistant/ai-calendar-assistant"
PROJECT = ComposeProject(
    name="ai-calendar-assistant", working_dir=WORKDIR, config_file="docker-compose.secure.yml"
)
NETWORK_KEY, RADICALE_VOLUME_KEY, BOT_VOLUME_KEY = "calendar-network", "radicale-data", "bot-data"
NETWORK = PROJECT.network_name(NETWORK_KEY)

BOT, BOT2, REDIS, RADICALE = "telegram-bot", "telegram-bot-2", "calendar-redis", "radicale-calendar"
CONTAINERS = (REDIS, RADICALE, BOT, *monitoring.CONTAINERS)

BACKUP_DIR = "/root/backups/calendar"
CRON_LINE = f"0 3 * * * {WORKDIR}/backup-calendar.sh >> /var/log/calendar-backup.log 2>&1"
HEALTH_URL = f"http://{HOST.addr}:8000/health"
PASSPHRASE_VAR = "CALENDAR_BACKUP_PASSPHRASE"
# `up` runs the backup only when the newest archive is older than this (cron's nightly run
# would have made a newer one); the suite alarms at 25 h.
FRESH_HOURS = 20
HISTORY_DAYS = 29
SECRET_KEYS = ("TELEGRAM_BOT_TOKEN", "YANDEX_GPT_API_KEY", "YANDEX_GPT_FOLDER_ID")
HERE = Path(__file__).resolve().parent
# Host programs the containers and the backup run (through the read-only /usr bind).
CALENDAR_NEEDS = {
    "/usr/bin/python3": "python3",
    "/usr/bin/redis-server": "redis-server",
    "/usr/bin/redis-cli": "redis-tools",
    "/usr/lib/python3/dist-packages/radicale": "python3-radicale",
    "/usr/bin/curl": "curl",
    "gpg": "gpg",
    "gpgconf": "gpgconf",
    "crontab": "cron",
    "/usr/bin/prometheus": "prometheus",
}


class Paths:
    """Machine-side paths of the server's files (computed late: RUNBOOK_LAB_DIR may change)."""

    @property
    def workdir(self) -> Path:
        return HOST.root / WORKDIR.removeprefix("/root/")

    @property
    def env(self) -> Path:
        return self.workdir / ".env"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def db(self) -> Path:
        return self.data / "calendar.db"

    @property
    def control(self) -> Path:
        """The bot stand-in's fault knob (see bot.py)."""
        return self.data / ".lab-fault"

    @property
    def bot_py(self) -> Path:
        return self.workdir / "app" / "bot.py"

    @property
    def backups(self) -> Path:
        return HOST.root / BACKUP_DIR.removeprefix("/root/")

    @property
    def crontab(self) -> Path:
        return HOST.hostdir / "crontabs" / "root"

    @property
    def image_bin(self) -> Path:
        return HOST.hostdir / "image" / "bin"

    @property
    def sbin(self) -> Path:
        """The server's /usr/local/sbin (first on root's PATH)."""
        return HOST.hostdir / "sbin"

    @property
    def stash(self) -> Path:
        """Where backup faults hide archives until heal puts them back."""
        return state_dir(NAME) / "stash"

    @property
    def filler(self) -> Path:
        return HOST.disk / ".lab-filler"


PATHS = Paths()


def backups() -> BackupDir:
    return BackupDir(PATHS.backups)


# ---- secrets and configuration ---------------------------------------------------------
def lab_secrets() -> dict[str, str]:
    """Fake per-lab credentials, generated once and kept in the state dir."""
    wanted: dict[str, Callable[[], str]] = {key: random_token for key in SECRET_KEYS}
    wanted["BACKUP_GPG_PASSPHRASE"] = lambda: secrets.token_urlsafe(24)
    return envfile.lab_secrets(NAME, wanted)


def render_env(values: dict[str, str], drop: Iterable[str] = ()) -> str:
    return envfile.render_env(
        [
            "# AI Calendar Assistant: production settings (runbook-lab replica, fake per-lab values)",
            *(f"{key}={values[key]}" for key in SECRET_KEYS),
            "REDIS_URL=redis://calendar-redis:6379",
            "RADICALE_URL=http://radicale-calendar:5232",
            "LOG_LEVEL=INFO",
            "",
            "# Nightly backup (backup-calendar.sh, cron 03:00)",
            f"BACKUP_DIR={BACKUP_DIR}",
            "BACKUP_RETENTION_DAYS=30",
            f"BACKUP_GPG_PASSPHRASE={values['BACKUP_GPG_PASSPHRASE']}",
        ],
        drop,
    )


def passphrase() -> str:
    return lab_secrets()["BACKUP_GPG_PASSPHRASE"]


def write_server_files(*, strict: bool) -> None:
    """Lay the server's files; `strict` (heal) also restores the ones a fault may change."""
    values = lab_secrets()
    PATHS.workdir.mkdir(parents=True, exist_ok=True)
    PATHS.data.mkdir(parents=True, exist_ok=True)
    PATHS.backups.mkdir(parents=True, exist_ok=True)
    PATHS.backups.chmod(0o700)
    (HOST.hostdir / "log").mkdir(parents=True, exist_ok=True)
    if strict or not PATHS.env.exists():
        write_file(PATHS.env, render_env(values), 0o600)
    compose = (HERE / "docker-compose.secure.yml").read_text().replace("@HOSTDIR@", str(HOST.hostdir))
    write_file(PATHS.workdir / "docker-compose.secure.yml", compose)
    write_file(PATHS.workdir / "backup-calendar.sh", (HERE / "backup-calendar.sh").read_text(), 0o755)
    restore = (HERE / "restore-from-backup.sh").read_text()
    write_file(PATHS.workdir / "restore-from-backup.sh", restore, 0o755)
    write_file(PATHS.sbin / "df", DF_WRAPPER.replace("@DISK@", str(HOST.disk)), 0o755)
    write_file(PATHS.bot_py, (HERE / "bot.py").read_text())
    write_file(PATHS.bot_py.with_name("resolv.conf"), SHORT_DNS_RESOLV_CONF)
    monitoring.write_files(PATHS.workdir)
    PATHS.image_bin.mkdir(parents=True, exist_ok=True)
    python = PATHS.image_bin / "python"
    if not python.is_symlink():
        python.symlink_to("/usr/bin/python3")  # the runbook runs `docker exec telegram-bot python`
    if strict or not PATHS.crontab.exists():
        write_crontab(CRON_LINE + "\n")
    envfile.publish({PASSPHRASE_VAR: values["BACKUP_GPG_PASSPHRASE"]})


# The server's "/" is the lab host's own small disk (the disk-full fault fills it, never this
# machine's): the runbook's `df -h /` on the server reports that disk; any other path is df's own.
DF_WRAPPER = """#!/bin/sh
# runbook-lab: on this lab server "/" is the disk @DISK@ (see lab/calendar/system.py).
for arg do
    shift
    [ "$arg" = / ] && arg=@DISK@
    set -- "$@" "$arg"
done
exec /usr/bin/df "$@"
"""


def write_crontab(text: str) -> None:
    """Root's crontab as cron keeps it: mode 600, group crontab."""
    write_file(PATHS.crontab, text, 0o600)
    with contextlib.suppress(KeyError):
        os.chown(PATHS.crontab, 0, grp.getgrnam("crontab").gr_gid)


# ---- the stand-in services -------------------------------------------------------------
def specs() -> dict[str, Spec]:
    """The containers of docker-compose.secure.yml and docker-compose.monitoring.yml."""
    usr = ["/usr:/usr:ro", f"{PATHS.image_bin}:/usr/local/bin:ro"]
    env = {key: value for key, value in parse_env(PATHS.env).items() if not key.startswith("BACKUP_")}
    bot_digest = hashlib.sha256((HERE / "bot.py").read_bytes()).hexdigest()[:16]
    common = {"project": PROJECT, "network": NETWORK}
    return {
        REDIS: Spec(
            name=REDIS,
            service="redis",
            command=["/usr/bin/redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"],
            binds=usr,
            mem_limit="256m",
            working_dir="/data",
            **common,
        ),
        RADICALE: Spec(
            name=RADICALE,
            service="radicale",
            command=[
                "/usr/bin/python3",
                "-m",
                "radicale",
                "--config=",
                "--server-hosts=0.0.0.0:5232",
                "--auth-type=none",
                "--rights-type=owner_only",
                "--storage-filesystem-folder=/data/collections",
                "--logging-level=info",
            ],
            binds=[f"{PROJECT.volume_name(RADICALE_VOLUME_KEY)}:/data:rw", *usr],
            mem_limit="256m",
            **common,
        ),
        BOT: Spec(
            name=BOT,
            service="telegram-bot",
            command=["/usr/bin/python3", "-u", "/app/bot.py"],
            binds=[
                f"{PATHS.data}:/app/data:rw",
                f"{PROJECT.volume_name(BOT_VOLUME_KEY)}:/var/lib/calendar-bot:rw",
                f"{PATHS.bot_py}:/app/bot.py:ro",
                # its reminder queue looks up calendar-redis, which a fault stops (lab.containers)
                f"{PATHS.bot_py.with_name('resolv.conf')}:/etc/resolv.conf:ro",
                *usr,
            ],
            mem_limit="1g",
            memswap_limit="1g",
            env=env,
            ports={8000: 8000},
            working_dir="/app",
            content=bot_digest,
            **common,
        ),
        **monitoring.specs(PATHS.workdir, WORKDIR, NETWORK, ["/usr:/usr:ro"]),
    }


def second_bot_spec() -> Spec:
    """Someone ran the bot image again by hand: same data, no published port."""
    return dataclasses.replace(specs()[BOT], name=BOT2, ports={}, number=2)


def health(timeout: float = 3) -> tuple[int, dict[str, Any]]:
    """(status code, JSON body) of GET /health, as the runbook's curl sees it."""
    return get_json(HEALTH_URL, timeout)


def healthy(timeout: float = 1) -> bool:
    """A healthy bot answers at once; a short timeout keeps waits from hanging on a slow one."""
    code, body = health(timeout)
    return code == 200 and body.get("status") == "healthy"


def redis_pong(client: docker.DockerClient) -> bool:
    return exec_output(client, REDIS, ["redis-cli", "ping"]) == (0, "PONG")


def radicale_answers(client: docker.DockerClient) -> bool:
    probe = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost:5232"]
    code, output = exec_output(client, RADICALE, probe)
    return code == 0 and output in ("200", "302")


def wait_healthy(client: docker.DockerClient, timeout: float = 60) -> None:
    wait_until(healthy, timeout=timeout, what=f"{HEALTH_URL} to answer healthy", interval=0.1)
    wait_until(lambda: redis_pong(client), timeout=timeout, what="PONG from calendar-redis", interval=0.1)
    wait_until(lambda: radicale_answers(client), timeout=timeout, what="radicale on :5232", interval=0.1)


def seed_radicale(client: docker.DockerClient) -> None:
    """Give the CalDAV store a calendar with events, so its backup is not empty."""
    calendar_dir = "/data/collections/collection-root/demo/calendar"
    if exec_output(client, RADICALE, ["test", "-d", calendar_dir])[0] == 0:
        return
    base = "http://localhost:5232/demo/calendar/"
    exec_output(client, RADICALE, ["curl", "-sf", "-u", "demo:x", "-X", "MKCALENDAR", base])
    for number, title in enumerate(["Daily standup", "Dentist", "Sprint review", "Call with mom"]):
        day = (dt.date.today() + dt.timedelta(days=number + 1)).strftime("%Y%m%d")
        ics = "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//AI Calendar Assistant//RU",
                "BEGIN:VEVENT",
                f"UID:event-{number}@ai-calendar-assistant",
                "DTSTAMP:20260101T000000Z",
                f"DTSTART:{day}T090000Z",
                f"DTEND:{day}T093000Z",
                f"SUMMARY:{title}",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )
        put = ["curl", "-sf", "-u", "demo:x", "-X", "PUT", "-H", "Content-Type: text/calendar"]
        exec_output(client, RADICALE, [*put, "--data-binary", ics, f"{base}event-{number}.ics"])


# ---- backups ---------------------------------------------------------------------------
def run_backup() -> None:
    """Run backup-calendar.sh on the server over SSH, exactly as its crontab line would."""
    HOST.ssh(f"{WORKDIR}/backup-calendar.sh >> /var/log/calendar-backup.log 2>&1")


def ensure_backups() -> None:
    """A fresh archive plus one per previous night, so retention and freshness checks see history."""
    archives = backups().archives()
    if not archives or age_hours(archives[-1]) > FRESH_HOURS:
        run_backup()
        if not backups().archives():
            raise LabError(f"backup-calendar.sh made no archive in {PATHS.backups}")
    backups().fill_history(nights=HISTORY_DAYS, at=dt.time(3, 0))


# ---- the system ------------------------------------------------------------------------
def _sshd_has_private_sbin() -> bool:
    """Whether the running sshd (if any) sees the server's own /usr/local/sbin."""
    pid = HOST.sshd_pid()
    if pid is None:
        return True
    try:
        return f" {SBIN} " in Path(f"/proc/{pid}/mountinfo").read_text()
    except OSError:
        return True


class CalendarSystem(LabSystem):
    def __init__(self, faults: Sequence[Fault]) -> None:
        super().__init__(name=NAME, hosts=[HOST], faults=faults)

    def converge(self, *, plan: HealPlan | None) -> None:
        require(CALENDAR_NEEDS)
        strict = plan is not None
        if not _sshd_has_private_sbin():
            HOST.stop_sshd()  # started before the server had its own /usr/local/sbin: start anew
        HOST.up()
        write_server_files(strict=strict)
        client = HOST.dockerd.client()
        try:
            if plan is not None:
                PATHS.control.unlink(missing_ok=True)  # the disk's filler: LabSystem.heal empties it
                remove_container(client, BOT2)
                if plan.restart_daemon:
                    for name in plan.recreate:
                        remove_container(client, name)
                    client.close()
                    HOST.dockerd.restart()
                    client = HOST.dockerd.client()
            ensure_hostroot_image(client)
            PROJECT.ensure_network(client, NETWORK_KEY, addresses.container_subnet(NAME, 0))
            PROJECT.ensure_volume(client, RADICALE_VOLUME_KEY)
            PROJECT.ensure_volume(client, BOT_VOLUME_KEY)
            monitoring.project(WORKDIR).ensure_volume(client, monitoring.DATA_VOLUME_KEY)
            if strict and PATHS.db.exists() and journal_mode(PATHS.db) != "wal":
                set_journal_mode(PATHS.db, "wal")
            reconcile(
                client,
                specs().values(),
                strict=strict,
                recreate=plan.recreate if plan else (),
                answers={REDIS: redis_pong},
            )
            wait_healthy(client)
            wait_until(lambda: monitoring.healthy(client), timeout=60, what="Prometheus, Grafana and Loki")
            seed_radicale(client)
            if plan is not None:
                backups().restore(PATHS.stash, plan.book.get("injected", []))
            ensure_backups()
        finally:
            client.close()

    def service_components(self) -> list[Component]:
        if not HOST.dockerd.ok():
            lines = [Component(f"container {name}", False, "dockerd down") for name in CONTAINERS]
        else:
            with HOST.dockerd.session() as client:
                lines = container_components(client, CONTAINERS, unwanted=[BOT2])
        lines.append(self._health_component())
        archives = backups().archives()
        if archives:
            age = age_hours(archives[-1])
            detail = f"{len(archives)} archives, newest {archives[-1].name} ({age:.1f} h old)"
            lines.append(Component("backups", age < 25, detail))
        else:
            lines.append(Component("backups", False, f"none in {BACKUP_DIR}"))
        cron_ok = PATHS.crontab.exists() and CRON_LINE in PATHS.crontab.read_text().splitlines()
        lines.append(
            Component("cron", cron_ok, CRON_LINE if cron_ok else "backup line missing from crontab -l")
        )
        return lines

    @staticmethod
    def _health_component() -> Component:
        if not HOST.link.ok():
            return Component("health", False, f"{HEALTH_URL}: host network down, not probed")
        try:
            code, body = health()
        except Exception as exc:
            return Component("health", False, f"{HEALTH_URL} -> {exc}")
        return Component("health", code == 200, f"{HEALTH_URL} -> {code} {body.get('status', '')}")

    def forget(self) -> None:
        envfile.unpublish([PASSPHRASE_VAR])
