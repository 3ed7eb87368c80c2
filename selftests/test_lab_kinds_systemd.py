"""The Magic Master kinds against a real systemd (Debian 12, systemd 252) over the lab's SSH.

A stand-in `magic-master` unit (selftests/magic_master_host.py) logs on demand; each kind is
shown passing on the healthy unit and failing on the runbook's failure: stopped, disabled,
a crash loop with Restart=always, ERROR lines in the journal (a multi-line one counted once),
ffmpeg missing from the unit's PATH, a corrupt or unreadable SQLite file. The host is slot 5
of the kit's selftest system (198.18.15.22), brought up here and torn down at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.core import wait_until
from lab.ssh import ssh_config_path
from lab.systemd_host import SystemdHost
from runbook.checks import journald, resources, sqlite, systemd
from runbook.checks.journald import JournaldCheck
from runbook.checks.resources import ResourceCheck
from runbook.checks.sqlite import SqliteCheck
from runbook.checks.systemd import SystemdCheck
from runbook.errors import CheckFailed, CheckPassed
from runbook.host.samples import STORE
from runbook.host.target import Connection, Target
from selftests.magic_master_host import UNIT, emit, install, magic_master_host, put_file
from selftests.test_foundation import run_pytest

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "4.", "remedy": "fix it"}
DB = "/var/lib/magic-master/magic.db"
MAKE_DB = (
    "sqlite3 {path} 'PRAGMA journal_mode=WAL; CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT); "
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
    'INSERT INTO jobs (name) SELECT printf("job %d %s", i, hex(randomblob(40))) FROM n; '
    "CREATE INDEX jobs_name ON jobs (name);'"
)


@pytest.fixture(scope="module")
def host() -> Iterator[SystemdHost]:
    host = magic_master_host()
    started = time.monotonic()
    host.up()
    try:
        install(host)
        host.ssh(f"mkdir -p /var/lib/magic-master && rm -f {DB}* && " + MAKE_DB.format(path=DB))
        host.ssh("useradd --system --no-create-home magic || true")
        print(f"\nmagic-master host up in {time.monotonic() - started:.1f} s")
        yield host
    finally:
        host.down()
        host.purge()


@pytest.fixture(scope="module")
def connection(host: SystemdHost) -> Iterator[Connection]:
    """One SSH connection for the module, as a run has one per host."""
    connection = Connection(
        f"ssh+persist://root@{host.addr}?ssh_config={ssh_config_path()}", connect_timeout=10
    )
    yield connection
    connection.close()


@pytest.fixture
def target(connection: Connection) -> Target:
    return fresh(
        Target("magic-master", connection.spec, command_timeout=20, connect_timeout=10, connection=connection)
    )


def fresh(target: Target) -> Target:
    """The target as a new run sees it: `systemctl show` is read once per run and host."""
    target.connection.cache.clear()
    return target


def unit(**fields: Any) -> SystemdCheck:
    return SystemdCheck(**{**COMMON, "id": "mm", "unit": UNIT, **fields})


def test_a_healthy_unit_passes_every_aspect(target: Target) -> None:
    for aspect in ({"active": True}, {"enabled": True}, {"max_restarts": 0}, {"program_on_path": "ffmpeg"}):
        systemd.verify(unit(**aspect), target)
    assert target.run("command -v ffmpeg").rc != 0  # found on the unit's PATH, not the login shell's
    with pytest.raises(CheckFailed, match=r"ffprobe not found on /opt/mm/bin:/usr/bin:/bin \(the unit's"):
        systemd.verify(unit(program_on_path="ffprobe"), target)


def test_stopped_and_disabled(host: SystemdHost, target: Target) -> None:
    host.ssh(f"systemctl disable --now {UNIT}")
    try:
        with pytest.raises(CheckFailed, match=r"magic-master.service is inactive \(dead\)"):
            systemd.verify(unit(active=True), target)
        with pytest.raises(CheckFailed, match=r"magic-master.service is disabled \(UnitFileState\)"):
            systemd.verify(unit(enabled=True), target)
        systemd.verify(unit(active=False), target)
    finally:
        host.ssh(f"systemctl enable --now {UNIT}")
    systemd.verify(unit(active=True), fresh(target))


def test_a_crash_loop(host: SystemdHost, target: Target) -> None:
    host.ssh("systemctl start mm-crash")
    try:
        wait_until(
            lambda: int(host.ssh("systemctl show -p NRestarts --value mm-crash").strip() or 0) >= 3,
            timeout=15,
            what="mm-crash restarted 3 times",
        )
        with pytest.raises(CheckFailed) as info:
            systemd.verify(unit(unit="mm-crash", max_restarts=2), target)
        assert "mm-crash.service" in info.value.found
        assert "restarting in a loop" in info.value.found or "times > 2" in info.value.found
        with pytest.raises(CheckFailed, match=r"[1-9]\d* entries of mm-crash with /error/"):
            journald.verify(journal(unit="mm-crash", pattern="error", since="1m"), target)
    finally:
        host.ssh("systemctl stop mm-crash")


def test_a_restart_since_the_last_run_is_information(
    host: SystemdHost, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(STORE, "folder", tmp_path)
    note = "in-memory mastering jobs were lost; users start mastering again"
    with pytest.raises(CheckPassed, match="baseline recorded"):
        systemd.verify(unit(uptime_note=note), target)
    systemd.verify(unit(uptime_note=note), fresh(target))  # not restarted: a plain pass
    host.ssh(f"systemctl restart {UNIT}")
    with pytest.raises(CheckPassed) as info:
        systemd.verify(unit(uptime_note=note), fresh(target))
    assert info.value.note.startswith("magic-master.service restarted since the last run (up since ")
    assert info.value.note.endswith(note)


def journal(**fields: Any) -> JournaldCheck:
    return JournaldCheck(**{**COMMON, "id": "mm-errors", "unit": UNIT, "since": "1h", **fields})


def test_journal_errors_against_a_threshold(host: SystemdHost, target: Target) -> None:
    marker = f"run{time.monotonic_ns()}"
    pattern = f"ERROR.*{marker}"
    journald.verify(journal(pattern=pattern), target)  # nothing yet: --grep exits 1, no error
    # A multi-line message in one entry (logger); its credentials name the daemon ($PPID), as
    # logger exits before journald looks up the sender's unit and the entry would have none.
    emit(
        host,
        f'echo "ERROR mastering failed {marker} job=1"; echo "INFO fine {marker}"; '
        f'logger --id=$PPID -p user.err "$(printf "ERROR multi {marker}\\nTraceback line two\\nline three")"',
    )

    def counted() -> int:
        try:
            journald.verify(journal(pattern=pattern, max_matches=1), target)
        except CheckFailed as failed:
            return int(failed.found.split()[0])
        return 0

    wait_until(lambda: counted() == 2, timeout=10, what="both ERROR entries in the journal")
    with pytest.raises(CheckFailed) as info:
        journald.verify(journal(pattern=pattern, max_matches=1, show_lines=1), target)
    assert info.value.evidence == {"last 1 entries": f"ERROR multi {marker}\nTraceback line two\nline three"}
    journald.verify(journal(pattern=pattern, max_matches=2), target)
    with pytest.raises(CheckFailed, match=r"entries of magic-master with priority <= err and /ERROR multi"):
        journald.verify(journal(priority="err", pattern=f"ERROR multi {marker}"), target)


def test_free_space_of_temp_dir(target: Target) -> None:
    resources.verify(ResourceCheck(**COMMON, id="tmp", disk="/tmp", min_free_mb=1), target)
    with pytest.raises(CheckFailed, match=r"MB free on .* < 1e\+09 MB"):
        resources.verify(ResourceCheck(**COMMON, id="tmp", disk="/tmp", min_free_mb=1e9), target)


def db(**fields: Any) -> SqliteCheck:
    return SqliteCheck(**{**COMMON, "id": "mm-db", "path": DB, **fields})


def test_database_from_the_units_environment_intact_and_readable(host: SystemdHost, target: Target) -> None:
    from_unit = {"unit": UNIT, "variable": "MAGIC_MASTER_DB"}
    listing = host.ssh("ls -l --time-style=full-iso /var/lib/magic-master")
    sqlite.verify(db(path="/srv/default.db", integrity=True, path_from=from_unit), target)
    assert host.ssh("ls -l --time-style=full-iso /var/lib/magic-master") == listing  # nothing written
    host.ssh(f"chown magic {DB} && chmod 600 {DB}")
    sqlite.verify(db(readable_by="magic"), target)
    host.ssh(f"chown root {DB}")
    with pytest.raises(CheckFailed, match=r"magic.db \(root:root 600\) is not readable by magic"):
        sqlite.verify(db(readable_by="magic"), target)


def test_a_corrupt_database(host: SystemdHost, target: Target) -> None:
    broken = "/var/lib/magic-master/broken.db"
    host.ssh(
        f"cp {DB} {broken} && printf '%1000s' | tr ' ' '\\377' | dd of={broken} bs=1 seek=12288 conv=notrunc"
    )
    with pytest.raises(CheckFailed) as info:
        sqlite.verify(db(path=broken, integrity=True), target)
    assert info.value.found.startswith(f"{broken} is damaged: ")
    put_file(host, "/var/lib/magic-master/garbage.db", b"not a database" * 100)
    with pytest.raises(CheckFailed, match="not a database"):
        sqlite.verify(db(path="/var/lib/magic-master/garbage.db", integrity=True), target)


DESCRIPTION = """\
system: magic-master
runbook: {runbook}
hosts:
  server: "ssh+persist://root@{addr}?ssh_config={config}"
x-common: &common
  {{severity: P2, section: "4. Перезапуск сервиса", remedy: "sudo systemctl restart magic-master"}}
checks:
  systemd:
    - {{<<: *common, id: mm-active, title: magic-master is active, unit: magic-master, active: true}}
    - {{<<: *common, id: mm-uptime, title: no restart since the last run, unit: magic-master,
       uptime_note: "active mastering jobs (in memory) were lost"}}
  journald:
    - {{<<: *common, id: mm-errors, title: few ERROR lines, unit: magic-master, pattern: ERROR,
       max_matches: 1000}}
  sqlite:
    - {{<<: *common, id: mm-db-intact, title: database intact, path: {db}, integrity: true}}
"""


def test_a_description_runs_them_and_the_restart_note_reaches_the_summary(
    host: SystemdHost, tmp_path: Path
) -> None:
    """Through the plugin, twice: the second run, after a restart, passes with the runbook's note."""
    runbook = tmp_path / "magic-master.md"
    runbook.write_text("# Magic Master\n", encoding="utf-8")
    description = tmp_path / "magic-master.yml"
    text = DESCRIPTION.format(runbook=runbook, addr=host.addr, config=ssh_config_path(), db=DB)
    description.write_text(text, encoding="utf-8")
    args = ("-m", "daily", f"--systems={description}", f"--reports-dir={tmp_path / 'reports'}")
    first = run_pytest(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    host.ssh(f"systemctl restart {UNIT}")
    second = run_pytest(*args)
    assert second.returncode == 0, second.stdout + second.stderr
    summary = json.loads((tmp_path / "reports" / "latest" / "summary.json").read_text(encoding="utf-8"))
    messages = {record["check_id"]: (record["outcome"], record["message"]) for record in summary["checks"]}
    outcome, message = messages["mm-uptime"]
    assert outcome == "passed"
    assert "restarted since the last run" in message and message.endswith("were lost")
    assert messages["mm-db-intact"] == ("passed", "ok")
