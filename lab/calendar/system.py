"""The AI Calendar Assistant server of the runbook, rebuilt on this machine.

One lab host (netns rbs-calendar, 198.18.0.2) runs dockerd with the three containers of
the runbook (telegram-bot, calendar-redis, radicale-calendar), an sshd whose /root holds
the project dir, the nightly backups and root's crontab, and a 64 MiB tmpfs as its disk.
`converge` brings all of that to the healthy state; the fault table lives in faults.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import hashlib
import io
import json
import os
import secrets as pysecrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import IPAMConfig, IPAMPool

from lab.core import (
    Component,
    JsonState,
    LabError,
    lab_dir,
    random_token,
    require,
    run,
    upsert_env_line,
    wait_until,
    write_file,
)
from lab.host import Host

NAME = "ai-calendar-assistant"
HOST = Host(system=NAME, netns="rbs-calendar", host_if="rbs-cal0", host_addr="198.18.0.1", addr="198.18.0.2")

PROJECT = "ai-calendar-assistant"
NETWORK = f"{PROJECT}_calendar-network"
SUBNET, GATEWAY = "198.18.16.0/24", "198.18.16.1"
RADICALE_VOLUME = f"{PROJECT}_radicale-data"
IMAGE_REPO, IMAGE_TAG = "runbook-lab/hostroot", "1"
IMAGE = f"{IMAGE_REPO}:{IMAGE_TAG}"

BOT, BOT2, REDIS, RADICALE = "telegram-bot", "telegram-bot-2", "calendar-redis", "radicale-calendar"
CONTAINERS = (REDIS, RADICALE, BOT)
SERVICES = {BOT: "telegram-bot", BOT2: "telegram-bot", REDIS: "redis", RADICALE: "radicale"}

WORKDIR = "/root/ai-calendar-assistant/ai-calendar-assistant"
BACKUP_DIR = "/root/backups/calendar"
CRON_LINE = f"0 3 * * * {WORKDIR}/backup-calendar.sh >> /var/log/calendar-backup.log 2>&1"
HEALTH_URL = f"http://{HOST.addr}:8000/health"
SPEC_LABEL = "runbook-lab.spec"
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
    def state(self) -> Path:
        """Lab bookkeeping, outside the server's view of itself."""
        return HOST.hostdir / "lab"

    @property
    def filler(self) -> Path:
        return HOST.disk / ".lab-filler"


P = Paths()


def fault_state() -> JsonState:
    return JsonState(P.state / "faults.json")


# ---- secrets and configuration ---------------------------------------------------------
def lab_secrets() -> dict[str, str]:
    """Fake per-lab credentials, generated once and kept in the state dir."""
    store = JsonState(P.state / "secrets.json")
    data = store.load()
    changed = False
    for key in SECRET_KEYS:
        if not data.get(key):
            data[key], changed = random_token(), True
    if not data.get("BACKUP_GPG_PASSPHRASE"):
        data["BACKUP_GPG_PASSPHRASE"], changed = pysecrets.token_urlsafe(24), True
    if changed:
        store.save(data)
    return data


def render_env(values: dict[str, str], drop: Iterable[str] = ()) -> str:
    lines = [
        "# AI Calendar Assistant: production settings (runbook-lab replica, fake per-lab values)",
        *(f"{k}={values[k]}" for k in SECRET_KEYS),
        "REDIS_URL=redis://calendar-redis:6379",
        "RADICALE_URL=http://radicale-calendar:5232",
        "LOG_LEVEL=INFO",
        "",
        "# Nightly backup (backup-calendar.sh, cron 03:00)",
        f"BACKUP_DIR={BACKUP_DIR}",
        "BACKUP_RETENTION_DAYS=30",
        f"BACKUP_GPG_PASSPHRASE={values['BACKUP_GPG_PASSPHRASE']}",
    ]
    dropped = set(drop)
    return "\n".join(ln for ln in lines if ln.split("=", 1)[0] not in dropped) + "\n"


def parse_env(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                out[key.strip()] = value
    return out


def passphrase() -> str:
    return lab_secrets()["BACKUP_GPG_PASSPHRASE"]


def write_server_files(*, strict: bool) -> None:
    """Lay the server's files; `strict` (heal) also restores the ones a fault may change."""
    values = lab_secrets()
    P.workdir.mkdir(parents=True, exist_ok=True)
    P.data.mkdir(parents=True, exist_ok=True)
    P.backups.mkdir(parents=True, exist_ok=True)
    P.backups.chmod(0o700)
    (HOST.hostdir / "log").mkdir(parents=True, exist_ok=True)
    if strict or not P.env.exists():
        write_file(P.env, render_env(values), 0o600)
    compose = (HERE / "docker-compose.secure.yml").read_text().replace("@HOSTDIR@", str(HOST.hostdir))
    write_file(P.workdir / "docker-compose.secure.yml", compose)
    write_file(P.workdir / "backup-calendar.sh", (HERE / "backup-calendar.sh").read_text(), 0o755)
    write_file(P.bot_py, (HERE / "bot.py").read_text())
    P.image_bin.mkdir(parents=True, exist_ok=True)
    python = P.image_bin / "python"
    if not python.is_symlink():
        python.symlink_to("/usr/bin/python3")  # the runbook runs `docker exec telegram-bot python`
    if strict or not P.crontab.exists():
        write_crontab(CRON_LINE + "\n")
    upsert_env_line(lab_dir() / "lab.env", PASSPHRASE_VAR, values["BACKUP_GPG_PASSPHRASE"])


def write_crontab(text: str) -> None:
    """Root's crontab as cron keeps it: mode 600, group crontab."""
    write_file(P.crontab, text, 0o600)
    with contextlib.suppress(KeyError):
        os.chown(P.crontab, 0, grp.getgrnam("crontab").gr_gid)


# ---- docker objects --------------------------------------------------------------------
def client() -> docker.DockerClient:
    """A new client for this server's dockerd; the caller closes it (or uses `session`)."""
    return HOST.docker()


@contextlib.contextmanager
def session() -> Iterator[docker.DockerClient]:
    dk = client()
    try:
        yield dk
    finally:
        dk.close()


def ensure_image(dk: docker.DockerClient) -> None:
    """No registry is reachable: import a near-empty root that runs the host's /usr."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        dk.images.get(IMAGE)
        return
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = {
            "usr": 0o755,
            "etc": 0o755,
            "tmp": 0o1777,
            "proc": 0o555,
            "sys": 0o555,
            "dev": 0o755,
            "root": 0o700,
            "run": 0o755,
            "var": 0o755,
            "var/tmp": 0o1777,
            "app": 0o755,
            "data": 0o755,
        }
        for name, mode in dirs.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
            tar.addfile(info)
        for name, target in {
            "bin": "usr/bin",
            "lib": "usr/lib",
            "lib64": "usr/lib64",
            "sbin": "usr/sbin",
        }.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name in ("etc/passwd", "etc/group", "etc/nsswitch.conf"):
            tar.add(f"/{name}", arcname=name)
    dk.api.import_image_from_data(
        buf.getvalue(),
        repository=IMAGE_REPO,
        tag=IMAGE_TAG,
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["/bin/bash"]',
        ],
    )


def compose_labels(service: str, number: int = 1) -> dict[str, str]:
    return {
        "com.docker.compose.project": PROJECT,
        "com.docker.compose.service": service,
        "com.docker.compose.container-number": str(number),
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.project.working_dir": WORKDIR,
        "com.docker.compose.project.config_files": f"{WORKDIR}/docker-compose.secure.yml",
    }


def ensure_network(dk: docker.DockerClient) -> None:
    if any(n.name == NETWORK for n in dk.networks.list(names=[NETWORK])):
        return
    dk.networks.create(
        NETWORK,
        driver="bridge",
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=SUBNET, gateway=GATEWAY)]),
        labels={"com.docker.compose.project": PROJECT, "com.docker.compose.network": "calendar-network"},
    )


def ensure_volume(dk: docker.DockerClient) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        dk.volumes.get(RADICALE_VOLUME)
        return
    dk.volumes.create(
        RADICALE_VOLUME,
        labels={"com.docker.compose.project": PROJECT, "com.docker.compose.volume": "radicale-data"},
    )


@dataclass(frozen=True)
class Spec:
    """What `docker-compose up` would create for one service; its digest detects drift."""

    name: str
    command: list[str]
    binds: list[str]
    mem_limit: str
    memswap_limit: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    working_dir: str = "/"
    number: int = 1
    content: str = ""  # digest of mounted code, so editing bot.py redeploys it
    restart_policy: str = "unless-stopped"  # "no": what a hand-made `docker run` gets

    @property
    def service(self) -> str:
        return SERVICES[self.name]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def specs() -> dict[str, Spec]:
    usr = ["/usr:/usr:ro", f"{P.image_bin}:/usr/local/bin:ro"]
    env = {k: v for k, v in parse_env(P.env).items() if not k.startswith("BACKUP_")}
    bot_digest = hashlib.sha256((HERE / "bot.py").read_bytes()).hexdigest()[:16]
    return {
        REDIS: Spec(
            REDIS,
            ["/usr/bin/redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"],
            usr,
            "256m",
            working_dir="/data",
        ),
        RADICALE: Spec(
            RADICALE,
            [
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
            [f"{RADICALE_VOLUME}:/data:rw", *usr],
            "256m",
        ),
        BOT: Spec(
            BOT,
            ["/usr/bin/python3", "-u", "/app/bot.py"],
            [f"{P.data}:/app/data:rw", f"{P.bot_py}:/app/bot.py:ro", *usr],
            "1g",
            "1g",
            env=env,
            ports={8000: 8000},
            working_dir="/app",
            content=bot_digest,
        ),
    }


def second_bot_spec() -> Spec:
    """Someone ran the bot image again by hand: same data, no published port."""
    bot = specs()[BOT]
    return Spec(
        BOT2,
        bot.command,
        bot.binds,
        bot.mem_limit,
        bot.memswap_limit,
        bot.env,
        {},
        bot.working_dir,
        2,
        bot.content,
    )


def create_container(dk: docker.DockerClient, spec: Spec) -> None:
    api = dk.api
    host_config = api.create_host_config(
        binds=spec.binds,
        port_bindings={p: ("0.0.0.0", hp) for p, hp in spec.ports.items()},
        mem_limit=spec.mem_limit or None,
        memswap_limit=spec.memswap_limit if spec.mem_limit else None,
        restart_policy={"Name": spec.restart_policy, "MaximumRetryCount": 0},
        network_mode=NETWORK,
    )
    networking = api.create_networking_config(
        {NETWORK: api.create_endpoint_config(aliases=[spec.service, spec.name])}
    )
    api.create_container(
        IMAGE,
        command=spec.command,
        name=spec.name,
        environment=[f"{k}={v}" for k, v in spec.env.items()],
        labels={**compose_labels(spec.service, spec.number), SPEC_LABEL: spec.digest()},
        working_dir=spec.working_dir,
        ports=list(spec.ports),
        host_config=host_config,
        networking_config=networking,
    )
    api.start(spec.name)


def get_container(dk: docker.DockerClient, name: str) -> Container | None:
    try:
        return dk.containers.get(name)
    except docker.errors.NotFound:
        return None


def pristine(c: Container, spec: Spec) -> bool:
    """Running from the current spec with no crash or restart on record."""
    state = c.attrs["State"]
    return (
        c.status == "running"
        and c.labels.get(SPEC_LABEL) == spec.digest()
        and c.attrs.get("RestartCount", 0) == 0
        and not state.get("OOMKilled")
    )


def remove_container(dk: docker.DockerClient, name: str) -> None:
    """Stop (SIGTERM, exit 0) then remove: `rm -f` would SIGKILL, and its `die` event with
    exit code 137 would look like a crash to a check reading `docker events`."""
    c = get_container(dk, name)
    if c is None:
        return
    if c.status in ("running", "restarting", "paused"):
        c.stop(timeout=5)
    c.remove(v=False)


def ensure_containers(dk: docker.DockerClient, *, strict: bool, recreate: Iterable[str] = ()) -> None:
    """Create missing or drifted containers; `strict` also replaces any that are not pristine."""
    force = set(recreate)
    for name, spec in specs().items():
        c = get_container(dk, name)
        if c is not None and (
            name in force or c.labels.get(SPEC_LABEL) != spec.digest() or (strict and not pristine(c, spec))
        ):
            remove_container(dk, name)
            c = None
        if c is None:
            create_container(dk, spec)
        elif c.status != "running":
            c.start()


# ---- probes ----------------------------------------------------------------------------
def health(timeout: float = 3) -> tuple[int, dict[str, Any]]:
    """(status code, JSON body) of GET /health, as the runbook's curl sees it."""
    try:
        with urllib.request.urlopen(HEALTH_URL, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def healthy(timeout: float = 1) -> bool:
    """A healthy bot answers at once; a short timeout keeps waits from hanging on a slow one."""
    code, body = health(timeout)
    return code == 200 and body.get("status") == "healthy"


def exec_out(dk: docker.DockerClient, name: str, argv: list[str]) -> tuple[int, str]:
    c = get_container(dk, name)
    if c is None or c.status != "running":
        return -1, ""
    res = c.exec_run(argv)
    return res.exit_code, res.output.decode(errors="replace").strip()


def redis_pong(dk: docker.DockerClient) -> bool:
    return exec_out(dk, REDIS, ["redis-cli", "ping"]) == (0, "PONG")


def radicale_answers(dk: docker.DockerClient) -> bool:
    code, out = exec_out(
        dk, RADICALE, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost:5232"]
    )
    return code == 0 and out in ("200", "302")


def wait_healthy(dk: docker.DockerClient, timeout: float = 60) -> None:
    wait_until(healthy, timeout=timeout, what=f"{HEALTH_URL} to answer healthy", interval=0.1)
    wait_until(lambda: redis_pong(dk), timeout=timeout, what="PONG from calendar-redis", interval=0.1)
    wait_until(lambda: radicale_answers(dk), timeout=timeout, what="radicale on :5232", interval=0.1)


def seed_radicale(dk: docker.DockerClient) -> None:
    """Give the CalDAV store a calendar with events, so its backup is not empty."""
    if exec_out(dk, RADICALE, ["test", "-d", "/data/collections/collection-root/demo/calendar"])[0] == 0:
        return
    base = "http://localhost:5232/demo/calendar/"
    exec_out(dk, RADICALE, ["curl", "-sf", "-u", "demo:x", "-X", "MKCALENDAR", base])
    for i, title in enumerate(["Daily standup", "Dentist", "Sprint review", "Call with mom"]):
        day = (dt.date.today() + dt.timedelta(days=i + 1)).strftime("%Y%m%d")
        ics = "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//AI Calendar Assistant//RU",
                "BEGIN:VEVENT",
                f"UID:event-{i}@ai-calendar-assistant",
                "DTSTAMP:20260101T000000Z",
                f"DTSTART:{day}T090000Z",
                f"DTEND:{day}T093000Z",
                f"SUMMARY:{title}",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )
        exec_out(
            dk,
            RADICALE,
            [
                "curl",
                "-sf",
                "-u",
                "demo:x",
                "-X",
                "PUT",
                "-H",
                "Content-Type: text/calendar",
                "--data-binary",
                ics,
                f"{base}event-{i}.ics",
            ],
        )


def journal_mode() -> str:
    conn = sqlite3.connect(P.db, timeout=5)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    finally:
        conn.close()


def set_journal_mode(mode: str) -> None:
    """Switch calendar.db from outside; retries while the bot holds its write lock."""

    def attempt() -> bool:
        conn = sqlite3.connect(P.db, timeout=5)
        try:
            return str(conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]).lower() == mode
        finally:
            conn.close()

    wait_until(attempt, timeout=30, what=f"calendar.db journal_mode={mode}", interval=0.2)


def bot_logs(name: str = BOT) -> str:
    with session() as dk:
        c = get_container(dk, name)
        return c.logs(stdout=True, stderr=True).decode(errors="replace") if c else ""


# ---- backups ---------------------------------------------------------------------------
def archives() -> list[Path]:
    """Backup archives, oldest first by mtime (the runbook picks the newest with `ls -t`)."""
    if not P.backups.is_dir():
        return []
    return sorted(P.backups.glob("*.tar.gz*"), key=lambda p: p.stat().st_mtime)


def age_hours(path: Path) -> float:
    return (time.time() - path.stat().st_mtime) / 3600


def run_backup() -> None:
    """Run backup-calendar.sh on the server over SSH, exactly as its crontab line would."""
    HOST.ssh(f"{WORKDIR}/backup-calendar.sh >> /var/log/calendar-backup.log 2>&1")


def ensure_backups() -> None:
    """A fresh archive plus one per previous night, so retention and freshness checks see history."""
    arcs = archives()
    if not arcs or age_hours(arcs[-1]) > FRESH_HOURS:
        run_backup()
        arcs = archives()
    if not arcs:
        raise LabError(f"backup-calendar.sh made no archive in {P.backups}")
    newest = arcs[-1]
    suffix = newest.name[newest.name.index(".tar.gz") :]
    have = {p.name[:8] for p in arcs}
    today = dt.date.today()
    for back in range(1, HISTORY_DAYS + 1):
        night = dt.datetime.combine(today - dt.timedelta(days=back), dt.time(3, 0))
        if night.strftime("%Y%m%d") in have:
            continue
        dst = P.backups / f"{night:%Y%m%d_%H%M%S}{suffix}"
        shutil.copyfile(newest, dst)
        dst.chmod(0o600)
        os.utime(dst, (night.timestamp(), night.timestamp()))


def gpg(args: list[str], data: bytes) -> bytes:
    """Symmetric gpg with the lab passphrase on fd 3 (never argv) and a throwaway GNUPGHOME."""
    with tempfile.TemporaryDirectory(prefix="rbs-gpg-") as home:
        os.chmod(home, 0o700)
        rfd, wfd = os.pipe()
        os.write(wfd, passphrase().encode())
        os.close(wfd)
        try:
            proc = subprocess.run(
                [
                    "gpg",
                    "--homedir",
                    home,
                    "--batch",
                    "--yes",
                    "--quiet",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase-fd",
                    str(rfd),
                    *args,
                ],
                input=data,
                capture_output=True,
                pass_fds=(rfd,),
                timeout=60,
            )
        finally:
            os.close(rfd)
            run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)
    if proc.returncode != 0:
        raise LabError(f"gpg {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def encrypt(plain: bytes) -> bytes:
    return gpg(["--symmetric", "--cipher-algo", "AES256", "--output", "-"], plain)


def decrypt(path: Path) -> bytes:
    return gpg(["--decrypt"], path.read_bytes())


def place_archive(data: bytes, when: dt.datetime) -> Path:
    """Put an archive into the backup dir named and dated like a nightly run at `when`."""
    dst = P.backups / f"{when:%Y%m%d_%H%M%S}.tar.gz.gpg"
    while dst.exists():
        when += dt.timedelta(seconds=1)
        dst = P.backups / f"{when:%Y%m%d_%H%M%S}.tar.gz.gpg"
    dst.write_bytes(data)
    dst.chmod(0o600)
    os.utime(dst, (when.timestamp(), when.timestamp()))
    return dst


def newest_time() -> dt.datetime:
    """A timestamp later than every archive, so an injected one sorts first with `ls -t`."""
    now = dt.datetime.now().replace(microsecond=0)
    arcs = archives()
    if arcs:
        latest = dt.datetime.fromtimestamp(arcs[-1].stat().st_mtime).replace(microsecond=0)
        now = max(now, latest + dt.timedelta(seconds=1))
    return now


# ---- convergence -----------------------------------------------------------------------
def restore_backups(book: dict[str, Any]) -> None:
    """Undo what backup faults did: stashed archives back, injected ones gone."""
    for rel in book.get("injected", []):
        (P.backups / rel).unlink(missing_ok=True)
    stash = P.state / "stash"
    if stash.is_dir():
        for item in stash.iterdir():
            target = P.backups / item.name
            if not target.exists():
                shutil.move(str(item), target)
            else:
                item.unlink()


def converge(
    *,
    strict: bool,
    recreate: Iterable[str] = (),
    restart_daemon: bool = False,
    book: dict[str, Any] | None = None,
) -> None:
    """Bring the server to healthy. `up` uses strict=False (create what is missing); `heal`
    uses strict=True, which also restores every file and container a fault may have touched."""
    require(CALENDAR_NEEDS)
    HOST.up()
    write_server_files(strict=strict)
    recreate = set(recreate)
    dk = client()
    try:
        if strict:
            P.control.unlink(missing_ok=True)
            P.filler.unlink(missing_ok=True)
            remove_container(dk, BOT2)
            if restart_daemon:
                for name in recreate:
                    remove_container(dk, name)
                dk.close()
                HOST.restart_dockerd()
                dk = client()
        ensure_image(dk)
        ensure_network(dk)
        ensure_volume(dk)
        if strict and P.db.exists() and journal_mode() != "wal":
            set_journal_mode("wal")
        ensure_containers(dk, strict=strict, recreate=recreate)
        wait_healthy(dk)
        seed_radicale(dk)
        if strict:
            restore_backups(book or {})
        ensure_backups()
    finally:
        dk.close()


def teardown(*, purge: bool) -> None:
    HOST.down()
    if purge:
        HOST.purge()
        upsert_env_line(lab_dir() / "lab.env", PASSPHRASE_VAR, None)


# ---- status ----------------------------------------------------------------------------
def components() -> list[Component]:
    out = [Component(n, ok, d) for n, ok, d in HOST.state_lines()]
    if not HOST.docker_ok():
        out += [Component(f"container {n}", False, "dockerd down") for n in CONTAINERS]
    else:
        with session() as dk:
            names = [*CONTAINERS, *([BOT2] if get_container(dk, BOT2) else [])]
            for name in names:
                c = get_container(dk, name)
                if c is None:
                    out.append(Component(f"container {name}", False, "missing"))
                    continue
                st = c.attrs["State"]
                detail = f"{c.status}, restarts {c.attrs.get('RestartCount', 0)}"
                if st.get("OOMKilled"):
                    detail += ", OOMKilled"
                out.append(Component(f"container {name}", c.status == "running" and name != BOT2, detail))
    if not HOST.network_ok():
        out.append(Component("health", False, f"{HEALTH_URL}: host network down, not probed"))
    else:
        try:
            code, body = health()
            out.append(Component("health", code == 200, f"{HEALTH_URL} -> {code} {body.get('status', '')}"))
        except Exception as exc:
            out.append(Component("health", False, f"{HEALTH_URL} -> {exc}"))
    arcs = archives()
    if arcs:
        age = age_hours(arcs[-1])
        out.append(
            Component("backups", age < 25, f"{len(arcs)} archives, newest {arcs[-1].name} ({age:.1f} h old)")
        )
    else:
        out.append(Component("backups", False, f"none in {BACKUP_DIR}"))
    cron_ok = P.crontab.exists() and CRON_LINE in P.crontab.read_text().splitlines()
    out.append(Component("cron", cron_ok, CRON_LINE if cron_ok else "backup line missing from crontab -l"))
    active = fault_state().load().get("active", [])
    out.append(Component("faults", True, ", ".join(active) if active else "none active"))
    return out
