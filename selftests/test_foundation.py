"""The foundation: the kind registry, a check no test runs, exit codes and transports, restarts.

Everything here runs on loopback and local:// (no lab).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook.checks.containers import classify_restarts
from runbook.checks.files import FileCheck
from runbook.checks.files import verify as verify_file
from runbook.checks.logs import COUNT_AND_TAIL
from runbook.describe import kinds, schema
from runbook.errors import CheckFailed, HostUnreachable
from runbook.host.target import Target
from runbook.run.execute import run_check

ROOT = Path(__file__).resolve().parents[1]
COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "1.", "remedy": "fix it"}

# -- the registry ------------------------------------------------------------------------


def test_every_kind_is_a_field_of_checks_and_has_verify() -> None:
    assert set(schema.Checks.model_fields) == set(kinds.describable())
    for kind, model in kinds.load().items():
        assert model.kind == kind
        check = model.model_construct(id="x")
        assert callable(kinds.verifier(check)), kind


def test_a_kind_registers_where_it_is_defined() -> None:
    """The files kind is one module (model + verify): descriptions accept it, run_check finds it."""
    assert kinds.load()["files"] is FileCheck
    checks = schema.Checks.model_validate({"files": [{**COMMON, "id": "db", "path": "/etc"}]})
    assert [check.kind for check in checks.all()] == ["files"]


def test_a_kind_defined_twice_is_refused() -> None:
    with pytest.raises(kinds.KindError, match="defined twice"):

        class Impostor(FileCheck):  # same kind name, another class
            kind = "files"


def test_files_kind_both_ways(tmp_path: Path, local: Target) -> None:
    database = tmp_path / "db.sqlite3"
    database.write_bytes(b"x")
    database.chmod(0o640)
    run_check(FileCheck(**COMMON, id="db", path=str(database), mode="640"), local)
    run_check(FileCheck(**COMMON, id="dir", path=str(tmp_path), type="directory"), local)
    with pytest.raises(CheckFailed, match=r"db\.sqlite3 mode 640 != 600"):
        verify_file(FileCheck(**COMMON, id="db", path=str(database), mode="600"), local)
    with pytest.raises(CheckFailed, match="does not exist"):
        verify_file(FileCheck(**COMMON, id="gone", path=str(tmp_path / "gone")), local)
    with pytest.raises(CheckFailed, match="is a directory, not a file"):
        verify_file(FileCheck(**COMMON, id="dir", path=str(tmp_path)), local)


DESCRIPTION = """\
system: unrun
runbook: runbook.md
hosts:
  local: "local://"
checks:
  commands:
    - {id: ping, title: answers ping, run: "true", severity: P2, section: "1.", remedy: fix}
  files:
    - {id: env, title: etc exists, path: /etc, type: directory, severity: P3, section: "2.", remedy: fix}
"""


def run_pytest(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_a_described_check_that_no_test_runs_stops_collection(tmp_path: Path) -> None:
    """A project whose tests_config/ lost its test: the files check would silently never run."""
    import shutil

    for folder in ("tests_health", "tests_backup"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "unrun.yml").write_text(DESCRIPTION, encoding="utf-8")
    ini = "[pytest]\ntestpaths = tests_health tests_backup tests_config\nrunbook_systems = unrun.yml\n"
    (tmp_path / "pytest.ini").write_text(ini, encoding="utf-8")
    (tmp_path / "tests_config").mkdir()
    done = run_pytest(f"--reports-dir={tmp_path / 'reports'}", cwd=tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "kind files has 1 check(s) but no test runs them" in done.stdout + done.stderr
    shutil.copytree(ROOT / "tests_config", tmp_path / "tests_config", dirs_exist_ok=True)
    complete = run_pytest(f"--reports-dir={tmp_path / 'reports'}", cwd=tmp_path)
    assert complete.returncode == 0, complete.stdout + complete.stderr
    assert " 3 passed" in complete.stdout


@pytest.mark.slow
def test_collect_only_reaches_no_host(tmp_path: Path) -> None:
    """`pytest --co` lists the checks; the checks run ahead (runbook.run.prefetch) must not start."""
    ran = tmp_path / "ran"
    description = tmp_path / "probe.yml"
    description.write_text(
        "system: probe\nrunbook: runbook.md\nhosts:\n  local: local://\nchecks:\n  commands:\n"
        f"    - {{id: touch, title: appends a line, run: 'echo x >> {ran}', severity: P3, section: '1.',"
        " remedy: r}\n",
        encoding="utf-8",
    )
    (tmp_path / "runbook.md").write_text("# r\n", encoding="utf-8")
    listed = run_pytest("--co", "-q", f"--systems={description}", f"--reports-dir={tmp_path / 'reports'}")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "probe:touch" in listed.stdout
    assert not ran.exists()
    done = run_pytest("-q", f"--systems={description}", f"--reports-dir={tmp_path / 'reports'}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran.read_text() == "x\n"  # run once: ahead, its test took the result


@pytest.mark.slow
def test_kind_is_a_keyword(tmp_path: Path) -> None:
    description = tmp_path / "unrun.yml"
    description.write_text(DESCRIPTION, encoding="utf-8")
    done = run_pytest(f"--systems={description}", f"--reports-dir={tmp_path}", "-k", "files")
    assert " 1 passed, " in done.stdout, done.stdout


TRAITS_KIND = '''"""A kind made for the test: it times answers and runs last, and says where it ran."""

from __future__ import annotations

import threading
from typing import ClassVar

from runbook.describe.model import CheckBase, HostPath
from runbook.host.target import Target


class ProbeCheck(CheckBase):
    kind: ClassVar[str] = "probe_traits"
    group: ClassVar[str] = "config"
    timed: ClassVar[bool] = True
    runs_last: ClassVar[bool] = True

    path: HostPath


def verify(check: ProbeCheck, target: Target) -> None:
    with open(check.path, "a", encoding="utf-8") as out:
        out.write(threading.current_thread().name + "\\n")
'''
TRAITS_DESCRIPTION = """\
system: traits
runbook: runbook.md
hosts:
  local: "local://"
checks:
  probe_traits:
    - {{id: probe, title: the probe times, path: {path}, severity: P3, section: "1.", remedy: fix}}
  probe_writes:
    - {{id: write, title: the probe writes, path: {path}.w, severity: P3, section: "1.", remedy: fix}}
  files:
    - {{id: etc, title: etc exists, path: /etc, type: directory, severity: P3, section: "2.", remedy: fix}}
"""


@pytest.mark.slow
def test_a_new_kind_with_traits_is_one_file(tmp_path: Path) -> None:
    """A copy of the suite with two more files in runbook/checks/: nothing else is edited, and
    the kinds' traits alone make the run gate one (writes), keep the other out of the prefetch
    (timed) and run it after every other check (runs_last)."""
    import shutil

    copy = tmp_path / "suite"
    shutil.copytree(ROOT / "runbook", copy / "runbook", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("tests_health", "tests_backup", "tests_config"):
        shutil.copytree(ROOT / folder, copy / folder)
    (copy / "runbook" / "checks" / "probe_traits.py").write_text(TRAITS_KIND, encoding="utf-8")
    writes_kind = (
        TRAITS_KIND.replace('"probe_traits"', '"probe_writes"')
        .replace("timed: ClassVar[bool] = True", 'writes: ClassVar[str] = "a line in a probe file"')
        .replace("    runs_last: ClassVar[bool] = True\n", "")
    )
    (copy / "runbook" / "checks" / "probe_writes.py").write_text(writes_kind, encoding="utf-8")
    probe = tmp_path / "probe.txt"
    description = tmp_path / "traits.yml"
    description.write_text(TRAITS_DESCRIPTION.format(path=probe), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(copy)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", f"--systems={description}"]
    command += [f"--reports-dir={tmp_path / 'reports'}", "-m", "daily", "-rs"]
    gated = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=120)
    assert "writes to the system (a line in a probe file)" in gated.stdout, gated.stdout + gated.stderr
    assert not Path(f"{probe}.w").exists()
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert probe.read_text(encoding="utf-8") == "MainThread\n"  # in its own turn, not run ahead
    allowed = subprocess.run(
        [*command, "--allow-writes"], cwd=copy, env=env, capture_output=True, text=True, timeout=120
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert probe.read_text(encoding="utf-8") == "MainThread\n" * 2
    assert Path(f"{probe}.w").read_text(encoding="utf-8") == "MainThread\n"
    ran = [line for line in allowed.stdout.splitlines() if " PASSED" in line]
    assert "traits:probe]" in ran[-1], ran  # after every other check


# -- exit 255: the command's own, or the transport's ---------------------------------------


def test_a_command_that_exits_255_leaves_the_host_reachable(local: Target) -> None:
    result = local.run("echo said; exit 255")
    assert (result.rc, result.stdout) == (255, "said\n")
    assert local.unreachable is None
    assert local.run("true").ok


def test_ssh_failing_to_connect_marks_the_host_unreachable() -> None:
    # Port 1 on loopback: nothing listens, ssh itself exits 255 (connection refused).
    target = Target("box", "ssh://nobody@127.0.0.1:1", command_timeout=5, connect_timeout=2)
    with pytest.raises(HostUnreachable, match=r"host box \(ssh://nobody@127\.0\.0\.1:1\) unreachable"):
        target.run("true")
    with pytest.raises(HostUnreachable, match="reported once"):
        target.run("true")


def test_connections_are_shared_by_spec_and_closed() -> None:
    from runbook.host.target import TargetPool

    pool = TargetPool()
    first = pool.get("server", "local://", command_timeout=5, connect_timeout=5)
    second = pool.get("db", "local://", command_timeout=9, connect_timeout=5)
    assert first.connection is second.connection
    assert (first.name, second.name, second.command_timeout) == ("server", "db", 9)
    assert first.run("true").ok
    pool.close()


# -- restarts: docker's after a crash, not an operator's -----------------------------------


def event(action: str, second: int, exit_code: int | None = None) -> dict[str, Any]:
    attributes = {} if exit_code is None else {"exitCode": str(exit_code)}
    return {"Action": action, "timeNano": second * 1_000_000_000, "Actor": {"Attributes": attributes}}


def test_operator_restart_is_not_a_restart_loop() -> None:
    # docker restart / docker-compose restart: kill, die, stop, start.
    events = [event("die", 10, 0), event("stop", 11), event("start", 12)]
    crashes, by_operator = classify_restarts(events)
    assert crashes == []
    assert len(by_operator) == 1 and "operator" in by_operator[0]
    # a process that ignores SIGTERM is killed (137) by `docker stop`: still the operator's
    crashes, _ = classify_restarts([event("die", 10, 137), event("stop", 20), event("start", 21)])
    assert crashes == []


def test_policy_restarts_after_a_crash_are_counted() -> None:
    events = [event("die", 10, 1), event("start", 11), event("die", 20, 137), event("start", 21)]
    crashes, by_operator = classify_restarts(events)
    assert [c["timeNano"] for c in crashes] == [10_000_000_000, 20_000_000_000]
    assert by_operator == []
    # a clean exit restarted by `always` is information, not a crash
    crashes, by_operator = classify_restarts([event("die", 10, 0), event("start", 11)])
    assert crashes == [] and "clean exit" in by_operator[0]


# -- the log check's single pass -----------------------------------------------------------


@pytest.mark.parametrize(("keep", "expected"), [(2, "5\nd\ne\n"), (0, "5\n"), (9, "5\na\nb\nc\nd\ne\n")])
def test_count_and_tail(local: Target, keep: int, expected: str) -> None:
    result = local.run(f"printf 'a\\nb\\nc\\nd\\ne\\n' | {COUNT_AND_TAIL}", str(keep))
    assert result.stdout == expected
    assert local.run(f"true | {COUNT_AND_TAIL}", "3").stdout == "0\n"


# -- a missing secret is the run's error, not the service's ---------------------------------

SECRETS_DESCRIPTION = """\
system: shop
runbook: runbook.md
hosts:
  local: "local://"
checks:
  files:
    - {id: etc, title: etc exists, path: /etc, type: directory, severity: P3, section: "2.", remedy: fix}
  postgres:
    - {id: db, title: db answers, dsn: "postgresql://shop:${RB_UNSET_DB_PASSWORD}@127.0.0.1:1/shop",
       select_one: true, severity: P1, section: "1.", remedy: start postgres}
  http:
    - {id: health, title: health answers, url: "http://127.0.0.1:1/health",
       headers: {X-Key: "${RB_UNSET_API_KEY}"}, severity: P1, section: "1.", remedy: start the app}
"""


@pytest.mark.slow
def test_a_missing_secret_stops_the_run_with_exit_4_naming_it(tmp_path: Path) -> None:
    """Not a P1 'start postgres': exit 4 before any check runs, every variable and who needs it."""
    description = tmp_path / "shop.yml"
    description.write_text(SECRETS_DESCRIPTION, encoding="utf-8")
    done = run_pytest(f"--systems={description}", f"--reports-dir={tmp_path / 'r'}")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "RB_UNSET_API_KEY (needed by shop:health)" in done.stderr
    assert "RB_UNSET_DB_PASSWORD (needed by shop:db)" in done.stderr
    assert " passed" not in done.stdout and " failed" not in done.stdout
    # A selection without the checks that need them needs nothing.
    only = run_pytest(f"--systems={description}", f"--reports-dir={tmp_path / 'r'}", "-k", "etc")
    assert only.returncode == 0, only.stdout + only.stderr
    assert " 1 passed" in only.stdout


@pytest.mark.parametrize(
    ("spec", "section"),
    [
        ("local://", "connection (this machine)"),
        ("ssh+persist://root@server.example.com", "connection (ssh to the server)"),
        ("docker://web", "connection (docker exec into the container)"),
    ],
)
def test_the_reachability_check_says_how_the_host_is_reached(spec: str, section: str) -> None:
    check = kinds.reachability_for("server", spec)
    assert check.section == section
    assert ("ssh" in check.remedy) == spec.startswith("ssh")


@pytest.mark.slow
def test_a_hosts_escape_sequences_never_reach_the_terminal(tmp_path: Path) -> None:
    """A host printing ESC[2J ESC[31m 'FAKE: all checks passed' must not clear or colour the screen."""
    description = tmp_path / "esc.yml"
    description.write_text(
        "system: esc\nrunbook: runbook.md\nhosts: {local: 'local://'}\nchecks:\n  commands:\n"
        "    - {id: esc, title: prints escapes,\n"
        "       run: \"printf '\\\\033[2J\\\\033[31mFAKE: all checks passed'\","
        " stdout_contains: nothing-like-this, severity: P2, section: '1.', remedy: fix}\n",
        encoding="utf-8",
    )
    done = run_pytest(f"--systems={description}", f"--reports-dir={tmp_path / 'r'}", "-rf")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "\x1b[2J" not in done.stdout and "\x1b[31mFAKE" not in done.stdout
    assert "\\x1b[2J\\x1b[31mFAKE: all checks passed" in done.stdout


def test_gc_pace_collects_less_often_and_leaves_gc_off_alone() -> None:
    import gc

    from runbook.run import gc_pace

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        gc_pace.pace()
        assert gc.get_threshold() == (gc_pace.YOUNG_ALLOCATIONS, 10, 10)
        gc.set_threshold(50_000, 10, 10)
        gc_pace.pace()
        assert gc.get_threshold()[0] == 50_000  # never more often than someone asked
        gc.set_threshold(0)
        gc_pace.pace()
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*saved)
