"""What the Magic Master runbook added to the generic kinds, without the lab (loopback, local://).

- http: a CORS preflight (`method: OPTIONS`, `forbid_headers`) refused or answered with `*`;
  `download: true` runs only with --allow-downloads (or --allow-writes), and never ahead of
  its turn (a download that is not allowed must not happen at all).
- env_files: `formats: {KEY: ip_list}` judged on the host, only counts in the message.
- backups: `format: sqlite` (integrity on a read-only open, the tables present).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError
from test_foundation import run_pytest

from runbook.checks import backups, env_files, http
from runbook.checks.backups import BackupCheck
from runbook.checks.env_files import EnvFileCheck
from runbook.checks.http import HttpCheck
from runbook.errors import CheckFailed
from runbook.host.target import Target

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "5.", "remedy": "fix it"}
FOREIGN = "https://foreign.example.net"
RUNBOOK = Path(__file__).resolve().parents[2] / "shared" / "runbooks" / "magic-master.md"


class CorsApp(BaseHTTPRequestHandler):
    """Answers a preflight as Starlette's CORSMiddleware does for `allowed` origins; counts downloads."""

    allowed: ClassVar[list[str]] = ["https://mm.example.com"]
    downloads = 0

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_OPTIONS(self) -> None:
        origin = self.headers.get("Origin", "")
        if "*" in self.allowed or origin in self.allowed:
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*" if "*" in self.allowed else origin)
        else:
            self.send_response(400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        type(self).downloads += 1
        body = b"SQLite format 3\x00" + bytes(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.sqlite3")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CorsApp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def preflight(base: str) -> HttpCheck:
    return HttpCheck(
        **COMMON,
        id="cors-preflight",
        url=f"{base}/api/health",
        method="OPTIONS",
        headers={"Origin": FOREIGN, "Access-Control-Request-Method": "GET"},
        expect_status=[200, 204, 400, 403],
        forbid_headers={"Access-Control-Allow-Origin": r"^(\*|https://foreign\.example\.net)$"},
    )


def test_a_refused_preflight_passes_and_an_allowed_one_fails(base: str, local: Target) -> None:
    CorsApp.allowed = ["https://mm.example.com"]
    http.verify(preflight(base), local)
    CorsApp.allowed = ["*"]
    with pytest.raises(CheckFailed) as info:
        http.verify(preflight(base), local)
    assert info.value.found.startswith("header Access-Control-Allow-Origin: '*' matches ")
    assert "(status 200, OPTIONS http://127.0.0.1:" in info.value.found
    CorsApp.allowed = ["https://mm.example.com"]


DOWNLOAD = """
system: mm
runbook: {runbook}
hosts: {{server: "local://"}}
checks:
  http:
    - id: admin-backup
      title: the backup API returns a SQLite file
      url: {base}/api/admin/backup/db
      download: true
      body_matches: "^SQLite format 3"
      severity: P3
      section: "3."
      remedy: run it by hand
    - id: another
      title: another endpoint
      url: {base}/api/health
      method: OPTIONS
      headers: {{Origin: "https://mm.example.com", Access-Control-Request-Method: GET}}
      severity: P3
      section: "1."
      remedy: none
"""


@pytest.mark.slow
def test_a_download_runs_only_when_allowed_and_never_ahead(base: str, tmp_path: Path) -> None:
    description = tmp_path / "mm.yml"
    description.write_text(DOWNLOAD.format(base=base, runbook=RUNBOOK), encoding="utf-8")
    CorsApp.downloads = 0
    done = run_pytest(f"--systems={description}", f"--reports-dir={tmp_path / 'r1'}", "-rs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "runs only with --allow-downloads or --allow-writes" in done.stdout
    assert CorsApp.downloads == 0, "a download that was not allowed happened (ahead of its turn?)"
    for option in ("--allow-downloads", "--allow-writes"):
        done = run_pytest(f"--systems={description}", f"--reports-dir={tmp_path / option}", option)
        assert " 3 passed" in done.stdout, done.stdout + done.stderr  # and the host reachable
    assert CorsApp.downloads == 2


def test_options_is_a_method_and_forbid_headers_are_regexes() -> None:
    with pytest.raises(ValidationError, match="forbid_headers"):
        HttpCheck(**COMMON, id="x", url="http://127.0.0.1/", forbid_headers={"Origin": "("})
    with pytest.raises(ValidationError, match="method"):
        HttpCheck(**COMMON, id="x", url="http://127.0.0.1/", method="DELETE")


# -- env_files: an IP whitelist ----------------------------------------------------------------

WHITELIST = "MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST"
IP_LIST = "ip_list"


def whitelist_check(path: Path) -> EnvFileCheck:
    return EnvFileCheck(
        **COMMON,
        id="yookassa-whitelist",
        path=str(path),
        required=[WHITELIST],
        formats={WHITELIST: "ip_list"},
    )


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("192.0.2.0/27, 198.51.100.7,2001:db8::/32,::1", None),
        ("", "is empty"),
        ("192.0.2.300,secret-host.example.com,192.0.2.0/33,10.0.0.1", "is invalid (3 of 4 entries not an IP"),
        ("*", "is placeholder"),
    ],
)
def test_an_ip_whitelist_is_judged_on_the_host(
    tmp_path: Path, local: Target, value: str, found: str | None
) -> None:
    path = tmp_path / ".env"
    path.write_text(f"OTHER=1\n{WHITELIST}={value}\n")
    if found is None:
        env_files.verify(whitelist_check(path), local)
        return
    with pytest.raises(CheckFailed) as info:
        env_files.verify(whitelist_check(path), local)
    assert f"{WHITELIST} {found}" in info.value.found
    assert "secret-host" not in info.value.found and "192.0.2.300" not in info.value.found


def test_formats_must_name_required_keys() -> None:
    with pytest.raises(ValidationError, match="formats names keys not in required: OTHER"):
        EnvFileCheck(
            **COMMON, id="x", path="/etc/app/.env", required=[WHITELIST], formats={"OTHER": "ip_list"}
        )


def telegram_check(path: Path) -> EnvFileCheck:
    return EnvFileCheck(**COMMON, id="telegram-notify", path=str(path), optional=["MAGIC_MASTER_TELEGRAM_*"])


@pytest.mark.parametrize(
    ("lines", "found"),
    [
        ("OTHER=1\n", None),  # not configured: 'если настроены' passes
        ("MAGIC_MASTER_TELEGRAM_BOT_TOKEN=123:abc\nMAGIC_MASTER_TELEGRAM_CHAT_ID=-100\n", None),
        ("MAGIC_MASTER_TELEGRAM_CHAT_ID=\n", None),  # empty: not configured
        (
            "MAGIC_MASTER_TELEGRAM_BOT_TOKEN=changeme\nMAGIC_MASTER_TELEGRAM_CHAT_ID=-100\n",
            "BOT_TOKEN is placeholder",
        ),
    ],
)
def test_optional_keys_pass_unset_and_are_judged_when_set(
    tmp_path: Path, local: Target, lines: str, found: str | None
) -> None:
    path = tmp_path / ".env"
    path.write_text(lines)
    if found is None:
        env_files.verify(telegram_check(path), local)
        return
    with pytest.raises(CheckFailed) as info:
        env_files.verify(telegram_check(path), local)
    assert found in info.value.found and "(values not shown)" in info.value.found
    assert "MAGIC_MASTER_TELEGRAM_* unset or real" in info.value.expected


def test_env_files_need_required_or_optional_keys() -> None:
    with pytest.raises(ValidationError, match=r"set required .*, optional .* or both"):
        EnvFileCheck(**COMMON, id="x", path="/etc/app/.env")
    with pytest.raises(ValidationError, match="not an environment variable name or a PREFIX_"):
        EnvFileCheck(**COMMON, id="x", path="/etc/app/.env", optional=["A*B"])


# -- backups: SQLite copies ----------------------------------------------------------------------


def fresh() -> Target:
    """A new local target: the backup listing is read once per run and host."""
    return Target("local", "local://", command_timeout=10, connect_timeout=5)


def sqlite_backup(path: Path, tables: tuple[str, ...] = ("users", "jobs", "payments")) -> Path:
    with sqlite3.connect(path) as db:
        for table in tables:
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, data TEXT)")
            db.executemany(
                f"INSERT INTO {table} (data) VALUES (?)", [(json.dumps(n) * 40,) for n in range(300)]
            )
    db.close()
    return path


def backup_check(folder: Path) -> BackupCheck:
    return BackupCheck(
        **COMMON,
        id="backup-valid",
        directory=str(folder),
        pattern="backup_*.sqlite3",
        format="sqlite",
        integrity=True,
        tables=["users", "jobs", "payments"],
    )


def test_a_sqlite_backup_with_its_tables_passes(tmp_path: Path, local: Target) -> None:
    sqlite_backup(tmp_path / "backup_20261124_0300.sqlite3")
    backups.verify(backup_check(tmp_path), local)
    assert not list(tmp_path.glob("*-wal")) + list(tmp_path.glob("*-journal")), "the check wrote beside it"


def test_a_backup_that_is_not_sqlite_or_lacks_tables_fails(tmp_path: Path, local: Target) -> None:
    wrong = sqlite_backup(tmp_path / "backup_20261124_0300.sqlite3", tables=("users",))
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path), local)
    assert info.value.found == f"{wrong} lacks table(s) jobs, payments (1 tables: users)"
    page = tmp_path / "backup_20261124_0400.sqlite3"
    page.write_text("<html>502 Bad Gateway</html>\n")
    with pytest.raises(CheckFailed) as info:
        backups.verify(
            backup_check(tmp_path), Target("local", "local://", command_timeout=10, connect_timeout=5)
        )
    assert info.value.found.startswith(f"{page} is damaged: ") and "not a database" in info.value.found


def test_env_files_read_a_file_a_unit_or_both() -> None:
    with pytest.raises(ValidationError, match=r"set path .* unit .* or both"):
        EnvFileCheck(**COMMON, id="x", required=[WHITELIST])
    EnvFileCheck(**COMMON, id="x", required=[WHITELIST], path="/opt/app/.env", unit="magic-master")
    with pytest.raises(ValidationError, match="takes no container"):
        EnvFileCheck(**COMMON, id="x", required=[WHITELIST], unit="magic-master", container="web")
    EnvFileCheck(**COMMON, id="x", required=[WHITELIST], unit="magic-master")


@pytest.fixture
def running_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, str]], None]]:
    """start(environment): a `systemctl` first on PATH names as MainPID a real process running with it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "pid"
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\ncat {pid_file}\n")
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    processes: list[subprocess.Popen[bytes]] = []

    def start(environment: dict[str, str]) -> None:
        process = subprocess.Popen(["sleep", "60"], env={"PATH": "/usr/bin:/bin", **environment})
        processes.append(process)
        pid_file.write_text(str(process.pid))

    try:
        yield start
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_env_files_read_the_unit_then_the_dotenv_file_it_loads_itself(
    tmp_path: Path, local: Target, running_unit: Callable[[dict[str, str]], None]
) -> None:
    """'В .env или в systemd Environment=': a key the unit lacks counts when the service's own .env
    has it; what the unit runs with wins; an absent file leaves the unit alone to judge."""
    running_unit({"MAGIC_MASTER_CORS_ORIGINS": "https://shop.example.com"})
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"{WHITELIST}=185.71.76.0/27,77.75.156.11\nMAGIC_MASTER_CORS_ORIGINS=*\n")
    keys = ["MAGIC_MASTER_CORS_ORIGINS", WHITELIST]
    check = EnvFileCheck(**COMMON, id="x", required=keys, unit="magic-master", path=str(dotenv))
    env_files.verify(check, local)
    dotenv.write_text("OTHER=1\n")
    with pytest.raises(CheckFailed) as info:
        env_files.verify(check, local)
    said = f"the environment of magic-master or {dotenv}: {WHITELIST} missing (values not shown)"
    assert info.value.found == said
    dotenv.unlink()
    with pytest.raises(CheckFailed) as info:
        env_files.verify(check, local)
    assert info.value.found.startswith(f"the environment of magic-master or {dotenv} (absent): ")
