"""The check kinds against a local:// Target on real files, sockets and servers.

Every check is proved both ways: green on a good input, red with the expected
message on a bad one. Nothing here needs the lab, root or the network.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks import backups, commands, cron, env_files, http, resources, sqlite, tcp
from runbook.checks.backups import BackupCheck
from runbook.checks.commands import CommandCheck
from runbook.checks.cron import CronCheck
from runbook.checks.env_files import EnvFileCheck
from runbook.checks.http import HttpCheck
from runbook.checks.resources import ResourceCheck
from runbook.checks.sqlite import SqliteCheck
from runbook.checks.tcp import TcpCheck
from runbook.errors import CheckError, CheckFailed, CommandTimeout, HostUnreachable
from runbook.host.deadline import call_with_deadline
from runbook.host.target import Target
from runbook.secrets.registry import MASK, SECRETS

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "4.", "remedy": "fix it"}
HOUR = 3600.0
DAY = 86400.0


def fresh_target() -> Target:
    return Target("local", "local://", command_timeout=10, connect_timeout=5)


# -- backups ---------------------------------------------------------------------------------


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def calendar_backup(*, with_bot: bool = True) -> bytes:
    """What backup-calendar.sh makes: nested radicale and bot archives plus the .env copy."""
    members = {
        "radicale_data.tar.gz": tar_gz({"collection-root/user/calendar.ics": b"BEGIN:VCALENDAR\n" * 50}),
        ".env.backup": b"TELEGRAM_BOT_TOKEN=not-read-by-the-check\n",
    }
    if with_bot:
        # Random bytes do not compress: a flipped byte lands in stored data that only the CRC sees.
        members["bot_data.tar.gz"] = tar_gz({"calendar.db": os.urandom(64 * 1024)})
    return tar_gz(members)


def put(folder: Path, name: str, data: bytes, age: float) -> Path:
    """Write an archive whose mtime is `age` seconds ago."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def backup_check(folder: Path, **fields: Any) -> BackupCheck:
    return BackupCheck(**{**COMMON, "id": "backup", "directory": str(folder), **fields})


def test_backup_fresh_passes(tmp_path: Path, local: Target) -> None:
    put(tmp_path, "20260101_030000.tar.gz", b"x" * 2000, 2 * DAY)
    put(tmp_path, "20260102_030000.tar.gz", b"x" * 2000, 1 * HOUR)
    backups.verify(backup_check(tmp_path, max_age_hours=25), local)


def test_backup_26h_old_fails(tmp_path: Path, local: Target) -> None:
    newest = put(tmp_path, "20260102_030000.tar.gz.gpg", b"x" * 2000, 26 * HOUR)
    put(tmp_path, "20260101_030000.tar.gz.gpg", b"x" * 2000, 50 * HOUR)
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path, max_age_hours=25), local)
    assert info.value.found == f"newest backup 26.0h old > 25h ({newest})"
    assert info.value.expected == "newest backup younger than 25h"


def test_backup_newest_is_by_mtime_not_name(tmp_path: Path, local: Target) -> None:
    put(tmp_path, "zzz-old.tar.gz", b"x" * 2000, 30 * HOUR)
    put(tmp_path, "aaa-new.tar.gz", b"x" * 2000, 1 * HOUR)
    backups.verify(backup_check(tmp_path, max_age_hours=25), local)


def test_backup_pattern_ignores_other_files(tmp_path: Path, local: Target) -> None:
    put(tmp_path, "backup.tar.gz", b"x" * 2000, 30 * HOUR)
    put(tmp_path, "calendar-backup.log", b"log", 0)
    put(tmp_path, "sub/new.tar.gz", b"x" * 2000, 0)  # -maxdepth 1
    with pytest.raises(CheckFailed, match=r"newest backup 30\.0h old > 25h"):
        backups.verify(backup_check(tmp_path, max_age_hours=25), local)


def test_backup_none_found(tmp_path: Path, local: Target) -> None:
    put(tmp_path, "notes.txt", b"x", 0)
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path, max_age_hours=25), local)
    assert info.value.found == f"no backups found: {tmp_path}/*.tar.gz* matches nothing"


def test_backup_folder_missing(tmp_path: Path, local: Target) -> None:
    with pytest.raises(CheckFailed, match=rf"cannot list {tmp_path}/missing: find: .*No such file"):
        backups.verify(backup_check(tmp_path / "missing", max_age_hours=25), local)


def test_backup_min_bytes(tmp_path: Path) -> None:
    put(tmp_path, "old.tar.gz", b"x" * 5000, 2 * DAY)
    newest = put(tmp_path, "new.tar.gz", b"x" * 20, 1 * HOUR)
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path, min_bytes=1000), fresh_target())
    assert info.value.found == f"newest backup 20 bytes < 1000 ({newest})"
    backups.verify(backup_check(tmp_path, min_bytes=20), fresh_target())


def test_backup_retention_passes_within_the_window(tmp_path: Path, local: Target) -> None:
    for day in range(0, 30, 3):
        put(tmp_path, f"day{day:02}.tar.gz", b"x", day * DAY + HOUR)
    backups.verify(backup_check(tmp_path, retention_days=30), local)


def test_backup_retention_fails_on_a_40_day_old_archive(tmp_path: Path, local: Target) -> None:
    put(tmp_path, "new.tar.gz", b"x", HOUR)
    put(tmp_path, "edge.tar.gz", b"x", 30.5 * DAY)  # inside the one day of slack
    old = put(tmp_path, "old.tar.gz", b"x", 40 * DAY)
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path, retention_days=30), local)
    assert info.value.found == (
        f"1 backup(s) older than 31 days; oldest 40.0d ({old}): retention cleanup is not running"
    )
    assert info.value.evidence == {"too old": str(old)}


def test_backup_integrity_of_a_good_archive(tmp_path: Path, local: Target) -> None:
    put(tmp_path, "backup.tar.gz", calendar_backup(), HOUR)
    check = backup_check(
        tmp_path, integrity=True, required_members=["radicale_data.tar.gz", "bot_data.tar.gz", ".env.backup"]
    )
    backups.verify(check, local)


def test_backup_integrity_reads_nested_archives(tmp_path: Path, local: Target) -> None:
    put(tmp_path, "backup.tar.gz", calendar_backup(), HOUR)
    check = backup_check(tmp_path, integrity=True, required_members=["radicale_data.tar.gz:*/calendar.ics"])
    backups.verify(check, local)


def test_backup_required_member_missing(tmp_path: Path, local: Target) -> None:
    path = put(tmp_path, "backup.tar.gz", calendar_backup(with_bot=False), HOUR)
    check = backup_check(
        tmp_path, integrity=True, required_members=["radicale_data.tar.gz", "bot_data.tar.gz", ".env.backup"]
    )
    with pytest.raises(CheckFailed) as info:
        backups.verify(check, local)
    assert info.value.found == f"{path} lacks bot_data.tar.gz (3 entries)"
    assert "radicale_data.tar.gz" in info.value.evidence["entries"]


def _truncate_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _drop_gzip_trailer(data: bytes) -> bytes:
    return data[:-8]  # CRC32 and ISIZE: `tar tzf` says "unexpected end of file"


def _flip_middle(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    return bytes(damaged)


def _flip_crc(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[-6] ^= 0xFF
    return bytes(damaged)


def _not_gzip(data: bytes) -> bytes:
    return b"this is not an archive\n" * 100


@pytest.mark.parametrize("damage", [_truncate_half, _drop_gzip_trailer, _flip_middle, _flip_crc, _not_gzip])
def test_backup_integrity_of_a_damaged_archive(tmp_path: Path, local: Target, damage: Any) -> None:
    good = calendar_backup()
    path = put(tmp_path, "backup.tar.gz", damage(good), HOUR)
    # The same damage is one `tar tzf` reports: the test's notion of corrupt is the runbook's.
    assert subprocess.run(["tar", "tzf", str(path)], capture_output=True).returncode != 0
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path, integrity=True), local)
    assert info.value.found.startswith(f"{path} is corrupt: ")


def test_backup_integrity_of_an_empty_archive(tmp_path: Path, local: Target) -> None:
    path = put(tmp_path, "backup.tar.gz", tar_gz({}), HOUR)
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path, integrity=True), local)
    assert info.value.found == f"{path} is an empty archive"


def test_backup_integrity_of_a_damaged_nested_archive(tmp_path: Path, local: Target) -> None:
    inner = _flip_middle(tar_gz({"calendar.db": os.urandom(64 * 1024)}))
    path = put(tmp_path, "backup.tar.gz", tar_gz({"bot_data.tar.gz": inner}), HOUR)
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(tmp_path, integrity=True), local)
    assert info.value.found.startswith(f"{path} is corrupt: ")


@pytest.fixture
def gnupg_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


def encrypt(source: bytes, target: Path, passphrase: str, home: Path) -> None:
    """As backup-calendar.sh does: gpg --symmetric with the passphrase on a descriptor."""
    plain = target.with_suffix(".plain")
    plain.write_bytes(source)
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--pinentry-mode",
            "loopback",
            "--passphrase-fd",
            "0",
            "--symmetric",
            "--output",
            str(target),
            str(plain),
        ],
        input=passphrase.encode(),
        check=True,
        capture_output=True,
    )
    plain.unlink()


@pytest.mark.slow
def test_backup_gpg_with_the_right_passphrase(tmp_path: Path, local: Target, gnupg_home: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    encrypt(calendar_backup(), folder / "20260102_030000.tar.gz.gpg", "correct horse 42", gnupg_home)
    check = backup_check(
        folder,
        integrity=True,
        gpg_passphrase="correct horse 42",
        required_members=["radicale_data.tar.gz", "bot_data.tar.gz", ".env.backup"],
    )
    backups.verify(check, local)


@pytest.mark.slow
def test_backup_gpg_with_a_wrong_passphrase(tmp_path: Path, local: Target, gnupg_home: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    path = folder / "20260102_030000.tar.gz.gpg"
    encrypt(calendar_backup(), path, "correct horse 42", gnupg_home)
    check = backup_check(folder, integrity=True, gpg_passphrase="wrong battery 7")
    with pytest.raises(CheckFailed) as info:
        backups.verify(check, local)
    assert info.value.found.startswith(f"gpg cannot decrypt {path}: ")
    assert "wrong battery 7" not in str(info.value)


@pytest.mark.slow
def test_backup_gpg_without_a_passphrase(tmp_path: Path, local: Target, gnupg_home: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    encrypt(calendar_backup(), folder / "b.tar.gz.gpg", "correct horse 42", gnupg_home)
    with pytest.raises(CheckError, match=r"b\.tar\.gz\.gpg is encrypted but the check has no gpg_passphrase"):
        backups.verify(backup_check(folder, integrity=True), local)


@pytest.mark.slow
def test_backup_encryption_optional_reads_the_passphrase_only_for_a_gpg_archive(
    tmp_path: Path, local: Target, gnupg_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runbook: "Распаковать бэкап (если зашифрован)": a plain archive needs no passphrase."""
    monkeypatch.delenv("RB_SELFTEST_OPTIONAL_KEY", raising=False)
    folder = tmp_path / "backups"
    folder.mkdir()
    plain = folder / "20260101_030000.tar.gz"
    plain.write_bytes(calendar_backup())
    os.utime(plain, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    check = backup_check(folder, integrity=True, gpg_passphrase_env="RB_SELFTEST_OPTIONAL_KEY")
    backups.verify(check, local)
    encrypt(calendar_backup(), folder / "20260102_030000.tar.gz.gpg", "correct horse 42", gnupg_home)
    again = Target("local", "local://", command_timeout=10, connect_timeout=5)  # the folder is listed anew
    with pytest.raises(CheckError, match=r"is encrypted: set RB_SELFTEST_OPTIONAL_KEY in the environment"):
        backups.verify(check, again)
    monkeypatch.setenv("RB_SELFTEST_OPTIONAL_KEY", "correct horse 42")
    backups.verify(check, again)
    assert SECRETS.mask("gpg said correct horse 42") == "gpg said ***"


@pytest.mark.slow
def test_backup_gpg_of_a_corrupt_archive(tmp_path: Path, local: Target, gnupg_home: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    path = folder / "b.tar.gz.gpg"
    encrypt(_flip_middle(calendar_backup()), path, "correct horse 42", gnupg_home)
    with pytest.raises(CheckFailed) as info:
        backups.verify(backup_check(folder, integrity=True, gpg_passphrase="correct horse 42"), local)
    assert info.value.found.startswith(f"{path} is corrupt: ")


# -- env files ---------------------------------------------------------------------------------

PLANTED = "Zq9-planted-8123456:AAHdistinctive"
KEYS = ["TELEGRAM_BOT_TOKEN", "YANDEX_GPT_API_KEY", "YANDEX_GPT_FOLDER_ID"]


def env_check(path: Path, required: list[str] | None = None) -> EnvFileCheck:
    return EnvFileCheck(**COMMON, id="bot-env", path=str(path), required=required or KEYS)


def assert_no_values(error: CheckFailed, *values: str) -> None:
    text = " ".join([str(error), error.expected, error.found, *error.evidence.values()])
    for value in values:
        assert value not in text


def test_env_file_with_real_values_passes(tmp_path: Path, local: Target) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# the bot's settings\n"
        f"TELEGRAM_BOT_TOKEN={PLANTED}\n"
        'export YANDEX_GPT_API_KEY="AQVN-real key with spaces"\n'
        "  YANDEX_GPT_FOLDER_ID = 'b1g2d3e4'  \n"
    )
    env_files.verify(env_check(path), local)


def test_env_file_problems_are_named_without_values(tmp_path: Path, local: Target) -> None:
    path = tmp_path / ".env"
    path.write_text(
        f"# TELEGRAM_BOT_TOKEN={PLANTED}\n"  # a comment does not define the key
        "YANDEX_GPT_API_KEY=\n"
        "YANDEX_GPT_FOLDER_ID=your_folder_id_here\n"
        f"OTHER_SECRET={PLANTED}\n"
    )
    with pytest.raises(CheckFailed) as info:
        env_files.verify(env_check(path), local)
    assert info.value.found == (
        f"{path}: TELEGRAM_BOT_TOKEN missing; YANDEX_GPT_API_KEY is empty; "
        "YANDEX_GPT_FOLDER_ID is placeholder (values not shown)"
    )
    assert_no_values(info.value, PLANTED, "your_folder_id_here")


@pytest.mark.parametrize(
    "value",
    [
        "your_token_here",
        "changeme",
        "CHANGEME",
        "...",
        "<token>",
        '"your_token_here"',
        "'...'",
        "xxxxxxxx",
        "****",
        "TODO",
    ],
)
def test_env_file_placeholders(tmp_path: Path, local: Target, value: str) -> None:
    path = tmp_path / ".env"
    path.write_text(f"TELEGRAM_BOT_TOKEN={value}\n")
    with pytest.raises(CheckFailed) as info:
        env_files.verify(env_check(path, ["TELEGRAM_BOT_TOKEN"]), local)
    assert info.value.found == f"{path}: TELEGRAM_BOT_TOKEN is placeholder (values not shown)"
    assert_no_values(info.value, value)


@pytest.mark.parametrize("line", ["KEY=", 'KEY=""', "KEY=''", "KEY=   ", "export KEY=", "KEY=\r"])
def test_env_file_empty_values(tmp_path: Path, local: Target, line: str) -> None:
    path = tmp_path / ".env"
    path.write_text(f"{line}\n")
    with pytest.raises(CheckFailed, match=r": KEY is empty \(values not shown\)"):
        env_files.verify(env_check(path, ["KEY"]), local)


@pytest.mark.parametrize(
    "line",
    [
        f"KEY={PLANTED}",
        f'KEY="{PLANTED}"',
        f"KEY='{PLANTED}'",
        f"export KEY={PLANTED}",
        f"\texport   KEY={PLANTED}",
        f"KEY={PLANTED}\r",
        "KEY=my-changeme-is-real",  # a placeholder word inside a real value is not a placeholder
        "KEY=postgres://u:p@db/x?a=b",  # '=' in the value
    ],
)
def test_env_file_set_values(tmp_path: Path, local: Target, line: str) -> None:
    path = tmp_path / ".env"
    path.write_text(f"OTHER=1\n{line}\n")
    env_files.verify(env_check(path, ["KEY"]), local)


def test_env_file_later_lines_win(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f"KEY={PLANTED}\nKEY=\n")
    with pytest.raises(CheckFailed, match="KEY is empty"):
        env_files.verify(env_check(path, ["KEY"]), fresh_target())
    path.write_text(f"KEY=\nKEY={PLANTED}\n")
    env_files.verify(env_check(path, ["KEY"]), fresh_target())


def test_env_file_keys_are_not_prefixes(tmp_path: Path, local: Target) -> None:
    path = tmp_path / ".env"
    path.write_text(f"KEY_OLD={PLANTED}\nMY_KEY={PLANTED}\n")
    with pytest.raises(CheckFailed, match=r": KEY missing \(values not shown\)"):
        env_files.verify(env_check(path, ["KEY"]), local)


def test_env_file_missing(tmp_path: Path, local: Target) -> None:
    path = tmp_path / "nowhere.env"
    with pytest.raises(CheckFailed) as info:
        env_files.verify(env_check(path), local)
    assert info.value.found == f"{path} does not exist"


# -- cron ----------------------------------------------------------------------------------------

CRONTAB = """\
# m h dom mon dow command
SHELL=/bin/bash
MAILTO=""
PATH=/usr/local/bin:/usr/bin:/bin
0  3 * * * /root/calendar/backup-calendar.sh >> /var/log/calendar-backup.log 2>&1
# 0 4 * * * /root/old-backup.sh
@reboot /root/start-bot.sh
*/5 * * * * /usr/local/bin/healthcheck --quiet
"""


def test_cron_entries_parse() -> None:
    assert cron.entries(CRONTAB) == [
        (
            "0 3 * * *",
            "/root/calendar/backup-calendar.sh >> /var/log/calendar-backup.log 2>&1",
        ),
        ("@reboot", "/root/start-bot.sh"),
        ("*/5 * * * *", "/usr/local/bin/healthcheck --quiet"),
    ]


def test_cron_entries_skip_blank_comments_and_variables() -> None:
    assert cron.entries("\n   \n# 0 3 * * * x\nFOO=a b c d e f\n") == []


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `crontab` first on PATH: prints the file `crontab.txt` (or fails as crontab does)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "crontab.txt"
    script = bin_dir / "crontab"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path}/crontab.args\n'
        f'if [ -f {table} ]; then cat {table}; else echo "no crontab for root" >&2; exit 1; fi\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    # cron's system tables of this test, empty unless a test writes them
    etc = tmp_path / "etc"
    (etc / "cron.d").mkdir(parents=True)
    monkeypatch.setattr(cron, "SYSTEM_CRONTABS", (str(etc / "crontab"), str(etc / "cron.d")))
    return table


def cron_check(schedule: str | None = "0 3 * * *", **fields: Any) -> CronCheck:
    return CronCheck(
        **{
            **COMMON,
            "id": "backup-cron",
            "schedule": schedule,
            "command_contains": "backup-calendar.sh",
            **fields,
        }
    )


def test_cron_schedule_matches(fake_crontab: Path, local: Target) -> None:
    fake_crontab.write_text(CRONTAB)
    cron.verify(cron_check(), local)


def test_cron_wrong_schedule(fake_crontab: Path, local: Target) -> None:
    fake_crontab.write_text(CRONTAB.replace("0  3 * * *", "30 4 * * *"))
    with pytest.raises(CheckFailed) as info:
        cron.verify(cron_check(), local)
    assert info.value.found == "backup-calendar.sh scheduled '30 4 * * *' != '0 3 * * *'"
    assert info.value.expected == (
        "a cron entry `0 3 * * * ...backup-calendar.sh...` "
        "(crontab of the login user, /etc/crontab or /etc/cron.d)"
    )
    assert "30 4 * * *" in info.value.evidence["crontab -l"]


def test_cron_entry_missing(fake_crontab: Path, local: Target) -> None:
    fake_crontab.write_text(CRONTAB.replace("0  3 * * * /root", "# 0 3 * * * /root"))
    with pytest.raises(CheckFailed) as info:
        cron.verify(cron_check(crontabs="user"), local)
    assert info.value.found == "crontab has 2 entries, none runs backup-calendar.sh"


def test_cron_without_a_schedule_accepts_any_that_runs_the_job(fake_crontab: Path, local: Target) -> None:
    """A runbook that fixes no time: any schedule running the command passes; none running it fails."""
    fake_crontab.write_text(CRONTAB.replace("0  3 * * *", "17 1 * * 2"))
    check = cron_check(schedule=None)
    cron.verify(check, local)
    fake_crontab.write_text(CRONTAB.replace("0  3 * * * /root", "# 0 3 * * * /root"))
    with pytest.raises(CheckFailed) as info:
        cron.verify(check, local)
    assert info.value.found == "no cron entry runs backup-calendar.sh (crontab has 2 entries)"
    assert info.value.expected.startswith("a cron entry `(any schedule) ...backup-calendar.sh...`")


def test_cron_no_crontab_for_user(fake_crontab: Path, local: Target, tmp_path: Path) -> None:
    with pytest.raises(CheckFailed) as info:
        cron.verify(cron_check(user="backup", crontabs="user"), local)
    assert info.value.found == "no crontab for backup (no crontab for root)"
    assert (tmp_path / "crontab.args").read_text().split() == ["-l", "-u", "backup"]


def test_cron_finds_the_job_in_the_system_tables(fake_crontab: Path, local: Target, tmp_path: Path) -> None:
    """ "по cron" is any of cron's tables: /etc/crontab and /etc/cron.d name the user before the command."""
    etc = tmp_path / "etc"
    (etc / "crontab").write_text("SHELL=/bin/sh\n17 * * * * root cd / && run-parts /etc/cron.hourly\n")
    (etc / "cron.d" / "backup").write_text("30 2 * * * postgres /usr/local/bin/backup-calendar.sh\n")
    cron.verify(cron_check(schedule="30 2 * * *"), local)  # no user crontab at all
    cron.verify(cron_check(schedule=None, user="postgres"), local)
    with pytest.raises(CheckFailed) as info:
        cron.verify(cron_check(schedule=None, user="root"), local)  # a root job it is not
    assert info.value.found == (
        f"no cron entry runs backup-calendar.sh (no crontab for root; {etc}/crontab 1; {etc}/cron.d/backup 0)"
    )
    with pytest.raises(CheckFailed) as info:
        cron.verify(cron_check(schedule=None, crontabs="user"), local)  # the runbook checks `crontab -l`
    assert info.value.found == "no crontab for the login user (no crontab for root)"


# -- sqlite --------------------------------------------------------------------------------------


def make_db(path: Path, journal_mode: str) -> None:
    connection = sqlite3.connect(path)
    try:
        mode = connection.execute(f"PRAGMA journal_mode={journal_mode}").fetchone()[0]
        assert mode == journal_mode.lower()
        connection.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, title TEXT)")
        connection.execute("INSERT INTO events (title) VALUES ('standup')")
        connection.commit()
    finally:
        connection.close()


def sqlite_check(path: Path, mode: str = "wal") -> SqliteCheck:
    return SqliteCheck(**COMMON, id="bot-db-wal", path=str(path), journal_mode=mode)  # type: ignore[arg-type]


def test_sqlite_wal_passes(tmp_path: Path, local: Target) -> None:
    db = tmp_path / "calendar.db"
    make_db(db, "WAL")
    sqlite.verify(sqlite_check(db), local)


def test_sqlite_rollback_fails_the_wal_check(tmp_path: Path, local: Target) -> None:
    db = tmp_path / "calendar.db"
    make_db(db, "WAL")
    make_db(db, "DELETE")
    with pytest.raises(CheckFailed) as info:
        sqlite.verify(sqlite_check(db), local)
    assert info.value.found == "journal mode rollback != wal (header bytes 18-19: 1,1)"
    sqlite.verify(sqlite_check(db, "rollback"), local)


def test_sqlite_not_a_database(tmp_path: Path, local: Target) -> None:
    path = tmp_path / "calendar.db"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(CheckFailed, match=r"journal mode unknown \(header bytes 0,0\) != wal"):
        sqlite.verify(sqlite_check(path), local)


def test_sqlite_missing_file(tmp_path: Path, local: Target) -> None:
    with pytest.raises(CheckError, match=r"cannot read the header of .*/missing\.db: od: "):
        sqlite.verify(sqlite_check(tmp_path / "missing.db"), local)


# -- commands ------------------------------------------------------------------------------------


def command_check(run: str, **fields: Any) -> CommandCheck:
    return CommandCheck(**{**COMMON, "id": "redis-ping", "run": run, **fields})


def test_command_expected_stdout_passes(local: Target) -> None:
    commands.verify(command_check("echo PONG", expect_stdout="PONG"), local)


def test_command_wrong_stdout(local: Target) -> None:
    with pytest.raises(CheckFailed) as info:
        commands.verify(command_check("echo nope", expect_stdout="PONG"), local)
    assert info.value.found == "stdout 'nope' != 'PONG'"
    assert info.value.evidence["stdout"] == "nope\n"


def test_command_non_zero_exit(local: Target) -> None:
    run = "echo 'Could not connect to Redis' >&2; exit 1"
    with pytest.raises(CheckFailed) as info:
        commands.verify(command_check(run, expect_stdout="PONG"), local)
    assert info.value.found == f"`{run}` exit 1 != 0: Could not connect to Redis"


def test_command_expected_exit_and_contains(local: Target) -> None:
    commands.verify(command_check("echo 'db: ok'; exit 3", expect_exit=3, stdout_contains="ok"), local)
    with pytest.raises(CheckFailed, match=r"'ready' not in stdout 'db: starting'"):
        commands.verify(command_check("echo 'db: starting'", stdout_contains="ready"), local)


def test_command_gets_the_site_variables_it_may_pass(
    local: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Loyalty's smoke script takes SMOKE_CUSTOMER_ID or SMOKE_PHONE and SMOKE_MAX_MS_* where a
    site sets them: each one set reaches every command of the text, exactly and as data; an unset
    one is left out (the script's own default applies); none shows in the failure."""
    flag = tmp_path / "pwned"
    hostile = f"x'; touch {flag}; echo '"
    monkeypatch.setenv("SMOKE_PHONE", hostile)
    monkeypatch.setenv("SMOKE_MAX_MS_CODE", "1500")
    monkeypatch.setenv("SMOKE_MAX_MS_BALANCE", "800")
    monkeypatch.delenv("SMOKE_CUSTOMER_ID", raising=False)
    check = command_check(
        'cd / && printf "%s|%s|%s|%s" "$SMOKE_PHONE" "${SMOKE_CUSTOMER_ID-unset}" '
        '"$SMOKE_MAX_MS_CODE" "$SMOKE_MAX_MS_BALANCE"',
        expect_stdout=f"{hostile}|unset|1500|800",
        pass_env=["SMOKE_CUSTOMER_ID", "SMOKE_PHONE", "SMOKE_MAX_MS_*"],
    )
    commands.verify(check, local)
    assert not flag.exists()
    # a number is a limit unless its name says secret (as for ${VAR} in a description)
    monkeypatch.setenv("SMOKE_USER_TOKEN", "90817263")
    commands.verify(command_check("true", pass_env=["SMOKE_USER_TOKEN"]), local)
    assert SECRETS.mask("pin 90817263") == f"pin {MASK}"
    failing = command_check("echo no; exit 1", pass_env=["SMOKE_PHONE"])
    with pytest.raises(CheckFailed) as info:
        commands.verify(failing, local)
    assert "touch" not in info.value.found and "touch" not in str(info.value.evidence)


def test_pass_env_takes_names_only() -> None:
    with pytest.raises(ValueError, match="not an environment variable name"):
        command_check("true", pass_env=["A; rm -rf /"])


@pytest.mark.slow
def test_command_timeout(local: Target) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"`sleep 60` did not finish within 1s"):
        commands.verify(command_check("sleep 60", timeout=1), local)
    assert time.monotonic() - started < 30  # cut long before the command ends (a busy runner is slow)


# -- resources -----------------------------------------------------------------------------------


def test_disk_under_the_limit_passes(tmp_path: Path, local: Target) -> None:
    resources.verify(ResourceCheck(**COMMON, id="disk", disk=str(tmp_path), max_used_percent=100), local)


def test_disk_over_the_limit_fails(tmp_path: Path, local: Target) -> None:
    with pytest.raises(CheckFailed) as info:
        resources.verify(ResourceCheck(**COMMON, id="disk", disk=str(tmp_path), max_used_percent=0.01), local)
    assert info.value.expected == f"disk usage of {tmp_path} at most 0.01%"
    assert " used > 0.01% (" in info.value.found
    assert " free of " in info.value.found


def test_disk_of_a_missing_path(tmp_path: Path, local: Target) -> None:
    with pytest.raises(CheckError, match=r"df .*/missing failed: df: "):
        resources.verify(ResourceCheck(**COMMON, id="disk", disk=str(tmp_path / "missing")), local)


def test_memory(local: Target) -> None:
    resources.verify(ResourceCheck(**COMMON, id="mem", min_available_mb=1), local)
    with pytest.raises(CheckFailed, match=r"^\d+ MB available < 1e\+07 MB \(of [\d.]+ \w+\)"):
        resources.verify(ResourceCheck(**COMMON, id="mem", min_available_mb=10_000_000), local)


# -- tcp from the runner -------------------------------------------------------------------------


def test_tcp_listening_port_passes(local: Target) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        tcp.verify(TcpCheck(**COMMON, id="tcp", address="127.0.0.1", port=port), local)


def test_tcp_closed_port_fails(local: Target) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(CheckFailed) as info:
        tcp.verify(TcpCheck(**COMMON, id="tcp", address="127.0.0.1", port=port, timeout=2), local)
    assert info.value.found.startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert info.value.expected == f"127.0.0.1:{port} accepts TCP connections"


# -- http from the runner ------------------------------------------------------------------------

HEALTHY = {
    "status": "healthy",
    "version": "1.4.2",
    "timestamp": "2026-01-02T03:00:00Z",
    "checks": {"redis": "ok"},
}
ROUTES: dict[str, tuple[int, bytes, float]] = {
    "/health": (200, json.dumps(HEALTHY).encode(), 0),
    "/unhealthy": (503, b'{"status": "unhealthy"}', 0),
    "/degraded": (200, json.dumps({**HEALTHY, "status": "degraded"}).encode(), 0),
    "/bare": (200, b'{"status": "healthy"}', 0),
    "/text": (200, b"<html>OK</html>", 0),
    "/list": (200, b"[1, 2]", 0),
    "/slow": (200, json.dumps(HEALTHY).encode(), 3),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body, delay = ROUTES.get(self.path, (404, b"{}", 0))
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the slow route)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours *_PROXY; the runner's own proxy must not stand between it and 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def http_check(url: str, **fields: Any) -> HttpCheck:
    return HttpCheck(**{**COMMON, "id": "health", "url": url, **fields})


def test_http_healthy_passes(server: str, local: Target) -> None:
    check = http_check(
        f"{server}/health",
        expect_json={"status": "healthy", "checks.redis": "ok"},
        expect_keys=["version", "timestamp"],
    )
    http.verify(check, local)


def test_http_unhealthy_status(server: str, local: Target) -> None:
    with pytest.raises(CheckFailed) as info:
        http.verify(http_check(f"{server}/unhealthy", expect_json={"status": "healthy"}), local)
    assert info.value.found.startswith(f"status 503 != 200 (GET {server}/unhealthy, ")
    assert info.value.evidence["response body"] == '{"status": "unhealthy"}'
    http.verify(http_check(f"{server}/unhealthy", expect_status=[200, 503]), local)


def test_http_any_status_passes_every_answer_and_fails_no_answer(server: str, local: Target) -> None:
    """`expect_status: any` is the runbook's `curl -s --max-time 5 URL || alert`: a 503 or a 404 is an
    answer (only the default [200] fails them); a closed port is no answer and fails."""
    for path in ("/unhealthy", "/no-such-route"):
        with pytest.raises(CheckFailed, match=r"^status (503|404) != 200 "):
            http.verify(http_check(f"{server}{path}"), local)
        http.verify(http_check(f"{server}{path}", expect_status="any"), local)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(CheckFailed) as info:
        http.verify(http_check(f"http://127.0.0.1:{port}/health", expect_status="any", timeout=2), local)
    assert info.value.expected == f"GET http://127.0.0.1:{port}/health answers"
    with pytest.raises(ValidationError, match=r"a list of statuses such as \[200\], or 'any' .*; not 'all'"):
        http_check(f"{server}/health", expect_status="all")


@pytest.mark.slow
def test_http_slow_answer_is_cut_at_the_timeout(server: str, local: Target) -> None:
    """The route answers 200 after 3 s: a failure saying 'no answer within 1s' is the cut."""
    with pytest.raises(CheckFailed) as info:
        http.verify(http_check(f"{server}/slow", timeout=1), local)
    assert info.value.found == f"no answer within 1s (GET {server}/slow)"


def test_http_json_value_mismatch(server: str, local: Target) -> None:
    with pytest.raises(CheckFailed) as info:
        http.verify(http_check(f"{server}/degraded", expect_json={"status": "healthy"}), local)
    assert info.value.found == f"JSON status 'degraded' != 'healthy' (GET {server}/degraded)"


def test_http_nested_json_value_mismatch(server: str, local: Target) -> None:
    with pytest.raises(CheckFailed, match=r"JSON checks\.redis 'ok' != 'down'"):
        http.verify(http_check(f"{server}/health", expect_json={"checks.redis": "down"}), local)


def test_http_missing_keys(server: str, local: Target) -> None:
    with pytest.raises(CheckFailed) as info:
        http.verify(http_check(f"{server}/bare", expect_keys=["version", "timestamp", "status"]), local)
    assert info.value.found == f"JSON lacks version, timestamp (GET {server}/bare)"


def test_http_body_not_json(server: str, local: Target) -> None:
    with pytest.raises(CheckFailed, match=r"body is not JSON: '<html>OK</html>'"):
        http.verify(http_check(f"{server}/text", expect_keys=["status"]), local)
    with pytest.raises(CheckFailed, match=r"JSON list"):
        http.verify(http_check(f"{server}/list", expect_keys=["status"]), local)
    http.verify(http_check(f"{server}/text"), local)  # status only: the body is not read as JSON


def test_http_connection_refused(local: Target) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(CheckFailed, match=rf"GET http://127.0.0.1:{port}/health failed: ConnectError: "):
        http.verify(http_check(f"http://127.0.0.1:{port}/health", timeout=2), local)


# -- the host seam -------------------------------------------------------------------------------


def test_run_quotes_arguments(local: Target) -> None:
    result = local.run("printf '%%s|' %s %s", "a b", "c; echo injected")
    assert (result.rc, result.stdout, result.ok) == (0, "a b|c; echo injected|", True)
    failed = local.run("echo oops >&2; exit 4")
    assert (failed.rc, failed.stderr, failed.ok) == (4, "oops\n", False)


@pytest.mark.slow
def test_run_timeout_is_quick(local: Target) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"local://: `sleep 60` did not finish within 1s"):
        local.run("sleep 60", timeout=1)
    assert time.monotonic() - started < 30  # cut long before the command ends
    assert local.unreachable is None  # a slow command is not a dead host
    assert local.run("echo still here").stdout == "still here\n"


@pytest.mark.slow
def test_deadline_guards_a_hanging_transport() -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match="hung call: no answer within 1s"):
        call_with_deadline(lambda: time.sleep(30), 1, "hung call")
    assert time.monotonic() - started < 20  # the caller stops waiting long before the call ends
    assert call_with_deadline(lambda: 42, 1, "quick call") == 42
    with pytest.raises(ZeroDivisionError):
        call_with_deadline(lambda: 1 // 0, 1, "failing call")


def test_unreachable_host_is_reported_once() -> None:
    # 198.18.0.0/15 is for benchmarks; this address answers nothing.
    target = Target("lab", "ssh://root@198.18.255.254", command_timeout=10, connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(HostUnreachable) as first:
        target.run("true")
    assert time.monotonic() - started < 30  # one connect attempt, bounded
    assert str(first.value).startswith("host lab (ssh://root@198.18.255.254) unreachable: ")
    assert target.unreachable is not None

    started = time.monotonic()
    with pytest.raises(HostUnreachable, match=r"\(reported once, not retried\)"):
        target.check_reachable()
    with pytest.raises(HostUnreachable), target.open_stream("/etc/hostname", timeout=5):
        pass
    assert time.monotonic() - started < 1.5  # no second connect attempt (connect_timeout is 2 s)


def test_open_stream_yields_the_file(tmp_path: Path, local: Target) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "archive with space.bin"
    path.write_bytes(data)
    with local.open_stream(str(path), timeout=10) as stream:
        assert stream.read() == data


def test_open_stream_missing_file(tmp_path: Path, local: Target) -> None:
    missing = pytest.raises(CheckError, match=r"reading .*/missing: cat: .*No such file")
    with missing, local.open_stream(str(tmp_path / "missing"), timeout=10) as stream:
        assert stream.read() == b""


@pytest.mark.slow
def test_open_stream_is_killed_at_the_deadline(tmp_path: Path, local: Target) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)  # cat blocks on it forever
    started = time.monotonic()
    too_slow = pytest.raises(CommandTimeout, match=r"reading .*never-written took longer than 1s")
    with too_slow, local.open_stream(str(fifo), timeout=1) as stream:
        stream.read()
    assert time.monotonic() - started < 20  # the FIFO never ends: the deadline did
