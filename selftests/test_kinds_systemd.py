"""The Magic Master kinds on local://: systemd and journald read through fake systemctl and
journalctl on PATH (canned output as Debian 12's systemd 252 prints it), sqlite integrity and
readability on real files, resources' min_free_mb on the runner's own disk.

The same kinds against a real systemd are in test_lab_kinds_systemd.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks import journald, resources, sqlite, systemd
from runbook.checks.journald import JournaldCheck
from runbook.checks.resources import ResourceCheck
from runbook.checks.sqlite import SqliteCheck
from runbook.checks.systemd import SystemdCheck
from runbook.describe import schema
from runbook.errors import CheckError, CheckFailed, CheckPassed
from runbook.host.samples import STORE
from runbook.host.target import Target

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "4.", "remedy": "fix it"}
SHOW = {
    "Id": "magic-master.service",
    "LoadState": "loaded",
    "ActiveState": "active",
    "SubState": "running",
    "UnitFileState": "enabled",
    "NRestarts": "0",
    "Result": "success",
    "ActiveEnterTimestamp": "Mon 2026-11-23 21:40:13 UTC",
    "ActiveEnterTimestampMonotonic": "5056806407",
    "ExecMainStatus": "0",
    "Environment": "PATH=/opt/mm/bin:/usr/bin:/bin MAGIC_MASTER_DB=/var/lib/magic-master/magic.db",
    "WorkingDirectory": "/opt/mm",
}


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def fake_systemctl(bin_dir: Path, **props: str) -> None:
    """`systemctl show -p ... -- UNIT` prints `props`; without a unit, the manager's PATH."""
    shown = "\n".join(f"{key}={value}" for key, value in {**SHOW, **props}.items())
    (bin_dir / "show.txt").write_text(shown + "\n")
    script = bin_dir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {bin_dir}/systemctl.args\n'
        'case "$*" in *" -- "*) ;; *) echo "Environment=LANG=C.UTF-8 PATH=/usr/bin:/bin"; exit 0;; esac\n'
        f"cat {bin_dir}/show.txt\n"
    )
    script.chmod(0o755)


def unit_check(**fields: Any) -> SystemdCheck:
    return SystemdCheck(**{**COMMON, "id": "mm", "unit": "magic-master", **fields})


def test_a_unit_name_is_never_an_option() -> None:
    for bad in ("-H evil", "--user", "a b", "a;b", ""):
        with pytest.raises(ValidationError):
            unit_check(unit=bad, active=True)
    with pytest.raises(ValidationError, match="set exactly one of"):
        unit_check(active=True, enabled=True)
    with pytest.raises(ValidationError):
        unit_check(program_on_path="-x")
    assert "systemd" in schema.Checks.model_fields and "journald" in schema.Checks.model_fields


def test_active_and_enabled_both_ways(fake_bin: Path, local: Target) -> None:
    fake_systemctl(fake_bin)
    systemd.verify(unit_check(active=True), local)
    systemd.verify(unit_check(enabled=True), local)
    args = (fake_bin / "systemctl.args").read_text().splitlines()
    assert len(args) == 1 and args[0].endswith("-- magic-master")  # one show per run and unit
    fake_systemctl(fake_bin, ActiveState="failed", SubState="failed", Result="exit-code", ExecMainStatus="3")
    with pytest.raises(CheckFailed) as info:
        systemd.verify(unit_check(active=True), Target("l", "local://", command_timeout=5, connect_timeout=5))
    assert info.value.found == "magic-master.service is failed (failed), result exit-code (exit status 3)"
    fake_systemctl(fake_bin, UnitFileState="disabled")
    with pytest.raises(CheckFailed, match=r"magic-master.service is disabled \(UnitFileState\)"):
        systemd.verify(
            unit_check(enabled=True), Target("l", "local://", command_timeout=5, connect_timeout=5)
        )
    fake_systemctl(fake_bin, LoadState="not-found", ActiveState="inactive")
    with pytest.raises(CheckFailed, match="no unit magic-master"):
        systemd.verify(unit_check(active=True), Target("l", "local://", command_timeout=5, connect_timeout=5))


def test_restarts_and_a_restart_loop(fake_bin: Path, local: Target) -> None:
    fake_systemctl(fake_bin, NRestarts="2")
    systemd.verify(unit_check(max_restarts=3), local)
    fake_systemctl(fake_bin, NRestarts="7")
    with pytest.raises(CheckFailed, match=r"restarted 7 times > 3 \(NRestarts, now active \(running\)\)"):
        systemd.verify(
            unit_check(max_restarts=3), Target("l", "local://", command_timeout=5, connect_timeout=5)
        )
    fake_systemctl(
        fake_bin, NRestarts="1", ActiveState="activating", SubState="auto-restart", ExecMainStatus="3"
    )
    with pytest.raises(CheckFailed) as info:
        systemd.verify(
            unit_check(max_restarts=3), Target("l", "local://", command_timeout=5, connect_timeout=5)
        )
    assert info.value.found == (
        "magic-master.service is restarting in a loop: activating (auto-restart), NRestarts=1, "
        "last exit status 3"
    )


def test_uptime_baseline_same_start_and_a_restart(
    fake_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(STORE, "folder", tmp_path / "state")
    note = "in-memory mastering jobs were lost"

    def run() -> None:
        systemd.verify(
            unit_check(uptime_note=note), Target("l", "local://", command_timeout=5, connect_timeout=5)
        )

    fake_systemctl(fake_bin)
    with pytest.raises(CheckPassed, match="baseline recorded"):
        run()
    run()  # the same start as the last run: a plain pass
    fake_systemctl(
        fake_bin, ActiveEnterTimestampMonotonic="5099000000", ActiveEnterTimestamp="Mon 2026-11-23 21:41"
    )
    with pytest.raises(CheckPassed) as info:
        run()
    assert info.value.note == (
        "magic-master.service restarted since the last run (up since Mon 2026-11-23 21:41, NRestarts=0): "
        + note
    )
    run()


def test_program_on_the_units_own_path(fake_bin: Path, tmp_path: Path, local: Target) -> None:
    unit_bin = tmp_path / "unit-bin"
    unit_bin.mkdir()
    (unit_bin / "ffmpeg").write_text("#!/bin/sh\n")
    (unit_bin / "ffmpeg").chmod(0o755)
    fake_systemctl(fake_bin, Environment=f'"PATH={unit_bin}" MAGIC=1')  # no shell on it
    systemd.verify(unit_check(program_on_path="ffmpeg"), local)
    with pytest.raises(CheckFailed) as info:
        systemd.verify(unit_check(program_on_path="ffprobe"), local)
    assert info.value.found == f"ffprobe not found on {unit_bin} (the unit's Environment=PATH)"
    fake_systemctl(fake_bin, Environment="MAGIC=1")  # no PATH of its own: the manager's
    with pytest.raises(CheckFailed, match=r"ffmpeg not found on /usr/bin:/bin \(systemd's own PATH\)"):
        systemd.verify(
            unit_check(program_on_path="ffmpeg"),
            Target("l", "local://", command_timeout=5, connect_timeout=5),
        )


# -- journald ------------------------------------------------------------------------------------


def fake_journalctl(bin_dir: Path, entries: list[str], rc: int = 0) -> None:
    """Prints one JSON entry per message (as --output=json does) and exits `rc`."""
    lines = [json.dumps({"__REALTIME_TIMESTAMP": "1", "PRIORITY": "3", "MESSAGE": text}) for text in entries]
    (bin_dir / "journal.txt").write_text("".join(line + "\n" for line in lines))
    script = bin_dir / "journalctl"
    script.write_text(
        f'#!/bin/sh\necho "$@" > {bin_dir}/journalctl.args\ncat {bin_dir}/journal.txt\nexit {rc}\n'
    )
    script.chmod(0o755)


def journal_check(**fields: Any) -> JournaldCheck:
    return JournaldCheck(**{**COMMON, "id": "mm-errors", "unit": "magic-master", "since": "1h", **fields})


def test_journal_counts_each_entry_once_and_shows_the_last(fake_bin: Path, local: Target) -> None:
    fake_journalctl(fake_bin, ["ERROR one", "ERROR multi\nline two\nline three", "ERROR three"])
    with pytest.raises(CheckFailed) as info:
        journald.verify(journal_check(pattern="ERROR", max_matches=2, show_lines=2), local)
    assert info.value.found == "3 entries of magic-master with /ERROR/ in the last 1h > 2"
    assert info.value.evidence == {"last 2 entries": "ERROR multi\nline two\nline three\nERROR three"}
    args = (fake_bin / "journalctl.args").read_text().split()
    assert args == [
        "--unit=magic-master", "--since=-3600s", "--no-pager", "--quiet", "--output=json",
        "--output-fields=MESSAGE,PRIORITY,__REALTIME_TIMESTAMP", "--case-sensitive=false", "--grep=ERROR",
    ]  # fmt: skip
    journald.verify(journal_check(pattern="ERROR", max_matches=3), local)


def test_journal_priority_and_nothing_matched(fake_bin: Path, local: Target) -> None:
    fake_journalctl(fake_bin, [], rc=1)  # journalctl --grep exits 1 when nothing matched
    journald.verify(journal_check(pattern="ERROR"), local)
    with pytest.raises(CheckError, match="journalctl -u magic-master exit 1"):
        journald.verify(journal_check(priority="err"), local)  # without --grep, 1 is an error
    fake_journalctl(fake_bin, ["boom"])
    with pytest.raises(CheckFailed, match="1 entries of magic-master with priority <= err"):
        journald.verify(journal_check(priority="err"), local)
    assert "--priority=err" in (fake_bin / "journalctl.args").read_text().split()


def grepping_journalctl(bin_dir: Path, entries: list[str]) -> None:
    """Filters its entries as journalctl does: --grep, caseless unless --case-sensitive=true."""
    lines = [json.dumps({"__REALTIME_TIMESTAMP": "1", "PRIORITY": "6", "MESSAGE": text}) for text in entries]
    (bin_dir / "journal.txt").write_text("".join(line + "\n" for line in lines))
    script = bin_dir / "journalctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {bin_dir}/journalctl.args\n'
        'flags=-i; pattern=""\n'
        'for arg; do case "$arg" in\n'
        "  --case-sensitive=true) flags=;;\n"
        '  --grep=*) pattern="${arg#--grep=}";;\n'
        "esac; done\n"
        f'grep -P $flags -e "$pattern" {bin_dir}/journal.txt\n'
    )
    script.chmod(0o755)


def test_journal_case_sensitive_counts_the_level_not_every_error(fake_bin: Path, local: Target) -> None:
    """Magic Master l.51 'сообщения с уровнем ERROR': an INFO line about /api/errors or '0 errors'
    is no ERROR entry; journalctl's caseless --grep counted them."""
    healthy = [
        "2026-01-01 10:00:00 INFO magic_master: GET /api/errors 200",
        "2026-01-01 10:00:01 INFO magic_master: health: database ok, errors: 0",
        "2026-01-01 10:00:02 INFO magic_master: error_count=0",
        "2026-01-01 10:00:03 INFO magic_master: POST /api/master answered a client error (422)",
    ]
    grepping_journalctl(fake_bin, healthy)
    journald.verify(journal_check(pattern=r"\bERROR\b", case_sensitive=True), local)
    assert "--case-sensitive=true" in (fake_bin / "journalctl.args").read_text().split()
    with pytest.raises(CheckFailed, match="4 entries"):  # caseless (the default): every 'error' counts
        journald.verify(journal_check(pattern="ERROR"), local)
    with pytest.raises(CheckFailed, match="1 entries"):  # a word, but still any case
        journald.verify(journal_check(pattern=r"\bERROR\b"), local)
    grepping_journalctl(fake_bin, [*healthy, "2026-01-01 10:00:04 ERROR magic_master: job 7 failed"])
    with pytest.raises(CheckFailed) as info:
        journald.verify(journal_check(pattern=r"\bERROR\b", case_sensitive=True), local)
    assert info.value.found == (
        "1 entries of magic-master with /\\bERROR\\b/ (case-sensitive) in the last 1h > 0"
    )
    assert info.value.evidence == {"last 1 entries": "2026-01-01 10:00:04 ERROR magic_master: job 7 failed"}
    with pytest.raises(ValidationError, match="case_sensitive: applies to pattern"):
        journal_check(priority="err", case_sensitive=True)


def test_journal_message_bytes_and_descriptions() -> None:
    assert journald.message(json.dumps({"MESSAGE": [69, 82, 82, 255]})) == "ERR\\xff"
    with pytest.raises(ValidationError, match="set priority"):
        journal_check()
    with pytest.raises(ValidationError, match="not a regular expression"):
        journal_check(pattern="(")
    with pytest.raises(ValidationError):
        journal_check(pattern="a\nb")


# -- sqlite: integrity, readable, path from the unit -----------------------------------------------


def make_db(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT)")
    connection.executemany("INSERT INTO jobs (name) VALUES (?)", [(f"job {i}" * 20,) for i in range(400)])
    connection.execute("CREATE INDEX jobs_name ON jobs (name)")
    connection.commit()
    connection.close()


def db_check(path: Path | str, **fields: Any) -> SqliteCheck:
    return SqliteCheck(**{**COMMON, "id": "mm-db", "path": str(path), **fields})


def test_a_check_without_an_aspect_is_still_the_wal_check() -> None:
    assert db_check("/var/lib/x.db").journal_mode == "wal"
    assert db_check("/var/lib/x.db", integrity=True).journal_mode is None
    with pytest.raises(ValidationError, match="set exactly one of"):
        db_check("/x.db", integrity=True, journal_mode="wal")
    with pytest.raises(ValidationError, match="file on the host"):
        db_check("/x.db", integrity=True, container="bot")


def test_integrity_ok_and_the_live_file_untouched(tmp_path: Path, local: Target) -> None:
    db = tmp_path / "magic.db"
    make_db(db)
    before = sorted(p.name for p in tmp_path.iterdir()), db.stat().st_mtime_ns
    sqlite.verify(db_check(db, integrity=True), local)
    assert (sorted(p.name for p in tmp_path.iterdir()), db.stat().st_mtime_ns) == before  # no -wal, -shm


def test_integrity_finds_damage(tmp_path: Path, local: Target) -> None:
    db = tmp_path / "magic.db"
    make_db(db)
    data = bytearray(db.read_bytes())
    data[4096 * 3 : 4096 * 3 + 200] = b"\xff" * 200  # a b-tree page overwritten
    db.write_bytes(bytes(data))
    with pytest.raises(CheckFailed) as info:
        sqlite.verify(db_check(db, integrity=True), local)
    assert info.value.found.startswith(f"{db} is damaged: ")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CheckFailed, match=r"garbage\.db is damaged: .*not a database"):
        sqlite.verify(db_check(garbage, integrity=True), local)
    with pytest.raises(CheckFailed, match=r"missing\.db does not exist"):
        sqlite.verify(db_check(tmp_path / "missing.db", integrity=True), local)


def test_integrity_through_python_when_there_is_no_sqlite3(
    tmp_path: Path, local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "with space%.db"
    make_db(db)
    python_only = tmp_path / "python-only"
    python_only.mkdir()
    (python_only / "python3").symlink_to(Path(sys.executable).resolve())
    for tool in ("sh", "env", "timeout", "kill"):
        found = next(Path(d) / tool for d in os.environ["PATH"].split(":") if (Path(d) / tool).exists())
        (python_only / tool).symlink_to(found.resolve())
    monkeypatch.setenv("PATH", str(python_only))
    sqlite.verify(db_check(db, integrity=True), local)


def test_readable_by_the_service_user(local: Target) -> None:
    if os.geteuid() != 0:
        pytest.skip("testing as another user needs root")
    folder = Path(tempfile.mkdtemp(prefix="runbook-readable-"))  # pytest's tmp_path is 700
    folder.chmod(0o755)
    db = folder / "magic.db"
    make_db(db)
    db.chmod(0o644)
    sqlite.verify(db_check(db, readable_by="nobody"), local)
    db.chmod(0o600)
    with pytest.raises(CheckFailed) as info:
        sqlite.verify(db_check(db, readable_by="nobody"), local)
    assert info.value.found == f"{db} (root:root 600) is not readable by nobody"
    with pytest.raises(CheckFailed, match="no user no-such-user"):
        sqlite.verify(db_check(db, readable_by="no-such-user"), local)
    shutil.rmtree(folder)


def test_path_from_the_units_environment(fake_bin: Path, tmp_path: Path, local: Target) -> None:
    db = tmp_path / "from-unit.db"
    make_db(db)
    fake_systemctl(fake_bin, Environment=f"MAGIC_MASTER_DB=sqlite:///{db}")
    from_unit = {"unit": "magic-master", "variable": "MAGIC_MASTER_DB"}
    sqlite.verify(db_check("/nonexistent/default.db", integrity=True, path_from=from_unit), local)
    fake_systemctl(fake_bin, Environment="OTHER=1")  # not set: the default path
    fresh = Target("l", "local://", command_timeout=5, connect_timeout=5)
    with pytest.raises(CheckFailed, match=r"/nonexistent/default\.db does not exist"):
        sqlite.verify(db_check("/nonexistent/default.db", integrity=True, path_from=from_unit), fresh)


def test_path_from_the_env_file_when_the_unit_sets_none(
    fake_bin: Path, tmp_path: Path, local: Target
) -> None:
    (tmp_path / "magic.db").write_bytes(b"")  # an empty file is a valid, empty database
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=s3cr3t-value\nexport MAGIC_MASTER_DB='sqlite:///./magic.db'\n")
    fake_systemctl(fake_bin, Environment="OTHER=1")
    source = {"unit": "magic-master", "env_file": str(env_file), "variable": "MAGIC_MASTER_DB"}
    check = db_check("/nonexistent/default.db", integrity=True, path_from=source)
    assert sqlite.database_path(check, local) == "/opt/mm/magic.db"  # relative to the unit's WorkingDirectory
    only_file = db_check("/nonexistent/default.db", integrity=True, path_from={**source, "unit": None})
    assert sqlite.database_path(only_file, local) == f"{tmp_path}/magic.db"  # to the .env's folder
    sqlite.verify(only_file, local)
    secret = db_check(
        "/x.db", integrity=True, path_from={"env_file": str(env_file), "variable": "SECRET_KEY"}
    )
    with pytest.raises(CheckError) as info:
        sqlite.verify(secret, local)
    assert "s3cr3t" not in str(info.value) and "(set, not a path)" in str(info.value)
    gone = {"env_file": str(tmp_path / "missing.env"), "variable": "MAGIC_MASTER_DB"}
    assert sqlite.database_path(db_check("/d.db", integrity=True, path_from=gone), local) == "/d.db"
    with pytest.raises(ValidationError, match="set unit, env_file or both"):
        db_check("/x.db", integrity=True, path_from={"variable": "X"})


# -- resources: free space ------------------------------------------------------------------------


def test_min_free_mb_of_temp_dir(tmp_path: Path, local: Target) -> None:
    resources.verify(ResourceCheck(**COMMON, id="tmp", disk=str(tmp_path), min_free_mb=1), local)
    with pytest.raises(CheckFailed, match=r"MB free on .* < 1e\+09 MB"):
        resources.verify(ResourceCheck(**COMMON, id="tmp", disk=str(tmp_path), min_free_mb=1e9), local)


def test_a_restarted_unit_active_at_one_moment_gets_a_second_look(
    fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash loop caught in its moment of `active (running)`: red once the second look sees it
    between two restarts; a unit that stays up since its last restart stays green."""
    monkeypatch.setattr(systemd, "SECOND_LOOK", 0.0)
    fresh = lambda: Target("l", "local://", command_timeout=5, connect_timeout=5)  # noqa: E731
    fake_systemctl(fake_bin, NRestarts="3")
    systemd.verify(unit_check(active=True), fresh())  # up since its restart, on both looks
    assert len((fake_bin / "systemctl.args").read_text().splitlines()) == 2
    looks = iter(
        [
            {**SHOW, "NRestarts": "3"},
            {**SHOW, "NRestarts": "4", "ActiveState": "activating", "SubState": "auto-restart",
             "Result": "exit-code", "ExecMainStatus": "2"},
        ]
    )  # fmt: skip
    monkeypatch.setattr(systemd, "read_unit", lambda target, unit: next(looks))
    monkeypatch.setattr(systemd, "read_unit_now", lambda target, unit: next(looks))
    with pytest.raises(CheckFailed) as info:
        systemd.verify(unit_check(active=True), fresh())
    assert info.value.found == (
        "magic-master.service is restarting in a loop: active (running), 0 s later activating "
        "(auto-restart), result exit-code (exit status 2) (NRestarts 3 -> 4)"
    )
    restarted_again = iter(
        [{**SHOW, "NRestarts": "3"}, {**SHOW, "NRestarts": "4", "ActiveEnterTimestampMonotonic": "9"}]
    )
    monkeypatch.setattr(systemd, "read_unit", lambda target, unit: next(restarted_again))
    monkeypatch.setattr(systemd, "read_unit_now", lambda target, unit: next(restarted_again))
    with pytest.raises(
        CheckFailed, match=r"restarting in a loop: active \(running\), 0 s later active \(running\)"
    ):
        systemd.verify(unit_check(active=True), fresh())


def test_a_unit_never_restarted_by_systemd_is_looked_at_once(fake_bin: Path, local: Target) -> None:
    fake_systemctl(fake_bin)
    systemd.verify(unit_check(active=True), local)
    assert len((fake_bin / "systemctl.args").read_text().splitlines()) == 1
