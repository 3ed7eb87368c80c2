"""The run history: the store on SQLite and on a real PostgreSQL, and consecutive runs compared.

The store's tests write runs directly (two processes at once, on both databases). The
consecutive-run tests drive the real suite four times against `readers-app` on local://,
breaking and healing its checks between runs (selftests/readers_kit.py), and read what each
run says changed: summary.json's history, the HTML report in Chromium (its top, in order,
before the full table) and `python -m runbook history`'s timeline.
"""

from __future__ import annotations

import html
import multiprocessing
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from runbook.readers.changes import FlapPolicy, compare, iso_time
from runbook.readers.history import HistoryError, HistoryStore, Past, Result, RunInfo, Streak
from selftests.data_servers import Postgres
from selftests.readers_kit import ROOT, ReadersApp, Run
from selftests.test_reports import chromium

# Every test here reads whole runs made by a module fixture (or is one): make test runs them.
pytestmark = pytest.mark.slow

HISTORY_PASSWORD = "hist-Walrus-Amber-6620"


def result(check: str, outcome: str) -> Result:
    return Result(
        f"app:{check}", "app", check, outcome, "P2", check.upper(), None if outcome == "passed" else "bad"
    )


def run_info(index: int, scope: str = "app -m daily") -> RunInfo:
    started = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=index)
    return RunInfo(
        scope, iso_time(started), iso_time(started + timedelta(minutes=1)), "daily", ("app",), 0, f"r{index}"
    )


# -- the comparison on its own ---------------------------------------------------------------


def test_compare_classifies_each_red_check_once() -> None:
    policy = FlapPolicy(changes=3, runs=10)
    earlier = [
        (
            run_info(3),
            {"app:a": result("a", "failed"), "app:b": result("b", "passed"), "app:c": result("c", "passed")},
        ),
        (run_info(2), {"app:a": result("a", "failed"), "app:c": result("c", "failed")}),
        (run_info(1), {"app:c": result("c", "passed"), "app:e": result("e", "failed")}),
    ]
    past = Past(run_id=4, runs=earlier, streaks={"app:a": Streak(2, run_info(2).started, "r2")})
    now = [result("a", "error"), result("b", "failed"), result("c", "failed"), result("d", "passed")]
    now.append(result("e", "passed"))  # red in run 1, absent since: resolved now
    changes = compare("app -m daily", run_info(4).started, now, past, policy)
    assert [c.check_id for c in changes.still_failing] == ["a"]
    assert changes.still_failing[0].runs == 3
    assert changes.still_failing[0].since == run_info(2).started
    # c: green, red, green, red (3 changes): a fresh failure of a flapping check is both
    assert [c.check_id for c in changes.new] == ["b", "c"]
    assert [c.check_id for c in changes.flapping] == ["c"]
    assert changes.flapping[0].changes == 3 and changes.flapping[0].status == "new"
    assert [c.check_id for c in changes.failing] == ["b", "c", "a"]  # each red check once
    assert [(c.check_id, c.runs, c.since) for c in changes.resolved] == [("e", 1, run_info(1).started)]
    assert changes.changed
    quiet = compare("app -m daily", run_info(4).started, [result("a", "failed")], past, policy)
    assert not quiet.changed  # a still failing, nothing else changed


def test_compare_waived_is_red_in_history_but_not_a_failure_to_list() -> None:
    past = Past(run_id=2, runs=[(run_info(1), {"app:a": result("a", "failed")})])
    changes = compare("s", run_info(2).started, [result("a", "waived")], past)
    assert changes.failing == [] and changes.resolved == []


# -- the store: SQLite and PostgreSQL, one writer at a time ------------------------------------


def _write_runs(location: str, writer: int, count: int) -> None:
    with HistoryStore.open(location) as store:
        for index in range(count):
            started = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(seconds=index * 2 + writer)
            run = RunInfo("app -m daily", iso_time(started), iso_time(started), "daily", ("app",), 1, None)
            results = [result(f"check-{n}", "failed" if (index + n) % 3 else "passed") for n in range(20)]
            store.record_run(run, results, window=10)


def write_concurrently(location: str, writers: int = 4, runs: int = 25) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_runs, args=(location, n, runs)) for n in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0, f"writer {process.name} failed"


def assert_complete(location: str, runs: int) -> None:
    with HistoryStore.open(location) as store:
        assert store.run_count() == runs
        rows = store.timeline(check="check-*", limit=100_000)
    per_run: dict[int, int] = {}
    for info, _ in rows:
        per_run[info.id or 0] = per_run.get(info.id or 0, 0) + 1
    assert len(per_run) == runs and set(per_run.values()) == {20}


def test_sqlite_two_writers_at_once(tmp_path: Path) -> None:
    location = str(tmp_path / "history.sqlite")
    write_concurrently(location)
    assert_complete(location, 100)
    with HistoryStore.open(location) as store:
        assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sqlite_streak_counts_red_runs_since_the_last_green(tmp_path: Path) -> None:
    with HistoryStore.open(str(tmp_path / "h.sqlite")) as store:
        outcomes = ["passed", "failed", "skipped", "failed", "error"]
        for index, outcome in enumerate(outcomes):
            store.record_run(run_info(index), [result("a", outcome)], window=10)
        past = store.record_run(run_info(9), [result("a", "failed")], window=10)
    streak = past.streaks["app:a"]
    assert (streak.runs, streak.since, streak.since_report_dir) == (3, run_info(1).started, "r1")
    assert [info.report_dir for info, _ in past.runs] == ["r4", "r3", "r2", "r1", "r0"]


def test_unopenable_store_is_a_history_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(HistoryError, match="cannot open"):
        HistoryStore.open(str(tmp_path / "file" / "history.sqlite"))


@pytest.fixture(scope="module")
def history_dsn(postgres_server: Postgres) -> Iterator[str]:
    """A database of its own with a password login, as a CI job would be given."""
    with postgres_server.superuser("postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS runbook_history")
        admin.execute("DROP ROLE IF EXISTS runbook_history")
        admin.execute(f"CREATE ROLE runbook_history LOGIN PASSWORD '{HISTORY_PASSWORD}'")
        admin.execute("CREATE DATABASE runbook_history OWNER runbook_history")
    yield f"postgresql://runbook_history:{HISTORY_PASSWORD}@127.0.0.1:{postgres_server.port}/runbook_history"


@pytest.fixture
def empty_pg(history_dsn: str) -> str:
    with psycopg.connect(history_dsn, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS runbook_results, runbook_runs, runbook_schema")
    return history_dsn


def test_postgres_two_writers_at_once(empty_pg: str) -> None:
    write_concurrently(empty_pg)  # the first writers race to create the schema too
    assert_complete(empty_pg, 100)


def test_postgres_same_schema_as_sqlite(empty_pg: str, tmp_path: Path) -> None:
    HistoryStore.open(empty_pg).close()
    HistoryStore.open(str(tmp_path / "h.sqlite")).close()
    with psycopg.connect(empty_pg) as connection:
        pg_columns = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name LIKE 'runbook_%' ORDER BY table_name, ordinal_position"
        ).fetchall()
    import sqlite3

    lite = sqlite3.connect(tmp_path / "h.sqlite")
    lite_columns = [
        (table, row[1])
        for (table,) in lite.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'runbook_%'"
        )
        for row in lite.execute(f"PRAGMA table_info({table})")
    ]
    assert sorted(pg_columns) == sorted(lite_columns)


def test_wrong_password_is_a_history_error_without_the_password(history_dsn: str) -> None:
    wrong = history_dsn.replace(HISTORY_PASSWORD, "not-the-Password-1")
    with pytest.raises(HistoryError) as caught:
        HistoryStore.open(wrong)
    assert "not-the-Password-1" not in str(caught.value)
    assert "postgresql://runbook_history:***@" in str(caught.value)


# -- consecutive runs of the suite ---------------------------------------------------------------


@dataclass
class Sequence_:
    app: ReadersApp
    runs: list[Run]


@pytest.fixture(scope="module")
def four_runs(tmp_path_factory: pytest.TempPathFactory, health: ThreadingHTTPServer) -> Sequence_:
    """green; worker+cache+flappy break; cache+flappy heal, api breaks; flappy breaks again."""
    app = ReadersApp(tmp_path_factory.mktemp("history"), health.server_address[1]).write()
    runs = [app.run()]
    for name in ("worker", "cache", "flappy"):
        app.break_(name)
    runs.append(app.run())
    app.heal("cache")
    app.heal("flappy")
    app.break_("api")
    runs.append(app.run())
    app.break_("flappy", "timeout")
    runs.append(app.run())
    return Sequence_(app, runs)


def test_first_run_has_nothing_to_compare(four_runs: Sequence_) -> None:
    first = four_runs.runs[0]
    assert first.returncode == 0, first.output[-3000:]
    assert first.history()["previous_run"] is None
    assert all(not first.changed(status) for status in ("new", "still_failing", "flapping", "resolved"))


def test_second_run_marks_new_failures(four_runs: Sequence_) -> None:
    second = four_runs.runs[1]
    assert second.returncode == 1
    assert sorted(second.changed("new")) == ["cache-warm", "flappy", "worker-queue"]
    first_started = four_runs.runs[0].summary()["run"]["started"].rstrip("Z")
    assert second.history()["previous_run"].startswith(first_started)
    assert "runbook history: 3 new, 0 still failing, 0 flapping, 0 resolved" in second.output


def test_third_run_still_failing_new_and_resolved(four_runs: Sequence_) -> None:
    third = four_runs.runs[2]
    assert third.changed("new") == ["api-config"]
    assert third.changed("still_failing") == ["worker-queue"]
    worker = third.history()["still_failing"][0]
    assert worker["runs"] == 2
    second_started = four_runs.runs[1].summary()["run"]["started"]
    assert worker["since"].startswith(second_started.rstrip("Z"))  # the history keeps microseconds
    assert worker["since_report_dir"] == four_runs.runs[1].folder.name
    assert sorted(third.changed("resolved")) == ["cache-warm", "flappy"]


def test_fourth_run_flapping_and_oldest_first(four_runs: Sequence_) -> None:
    fourth = four_runs.runs[3]
    assert fourth.changed("still_failing") == ["worker-queue", "api-config"]  # since run 2, since run 3
    assert [c["runs"] for c in fourth.history()["still_failing"]] == [3, 2]
    assert fourth.changed("flapping") == ["flappy"]  # green, red, green, red
    assert fourth.history()["flapping"][0]["changes"] == 3
    # red again after green: new now, and flapping over the last runs; both are said
    assert fourth.changed("new") == ["flappy"] and fourth.changed("resolved") == []
    assert "runbook history: 1 new, 2 still failing, 1 flapping, 0 resolved" in fourth.output
    assert "runbook.history" in (fourth.folder / "junit.xml").read_text(encoding="utf-8")


def test_scopes_are_compared_apart_but_a_streak_counts_every_run(four_runs: Sequence_) -> None:
    """An incident run of the same system is the first of its scope: nothing to compare with.
    How long worker-queue has been red is read from every run that included it: the daily
    runs saw it red since run 2, and the incident run continues that streak."""
    incident = four_runs.app.run(marker="incident")
    assert incident.history()["previous_run"] is None
    assert incident.history()["scope"] == "readers-app -m incident"
    worker = next(c for c in incident.history()["still_failing"] if c["check_id"] == "worker-queue")
    assert worker["runs"] == 4  # runs 2, 3 and 4 of the daily scope, and this one
    assert worker["since"].startswith(four_runs.runs[1].summary()["run"]["started"].rstrip("Z"))


@pytest.fixture(scope="module")
def fourth_dom(four_runs: Sequence_, tmp_path_factory: pytest.TempPathFactory) -> str:
    page = four_runs.runs[3].folder / "report.html"
    return html.unescape(
        chromium("--dump-dom", url=page.as_uri(), profile=tmp_path_factory.mktemp("profile"))
    )


def test_html_opens_with_the_history(fourth_dom: str) -> None:
    text = fourth_dom
    order = [
        text.index("Failures by severity"),
        text.index('id="rb-systems"'),
        text.index("New failures (1)"),  # flappy: red again after green, new now and flapping
        text.index("Still failing, oldest first (2)"),
        text.index("Flapping (1)"),
        text.index("Resolved (0)"),
        text.index('id="results-table"'),
    ]
    assert order == sorted(order), order
    history = text[text.index('id="rb-history"') : text.index('id="results-table"')]
    assert history.index("readers-app:worker-queue") < history.index("readers-app:api-config")
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d UTC: \d+ s, 3 runs", history)
    assert "3 changes of state in the last 10 runs" in history
    assert re.search(r"<td>readers-app</td><td>\d+</td><td>3</td>", text)


def test_html_skipped_rows_say_why_in_words(four_runs: Sequence_) -> None:
    """A skipped row's note is the reason in words, not pytest's (path, line, 'Skipped: ...') tuple."""
    page = html.unescape((four_runs.runs[3].folder / "report.html").read_text(encoding="utf-8"))
    notes = re.findall(r'<div class="rb-detail rb-skip">([^<]*)</div>', page)
    assert len(notes) == 1 and "readers-app does not declare feature 'monitoring'" in notes[0], notes
    assert "('/" not in notes[0]


def test_history_command_prints_the_timeline(four_runs: Sequence_) -> None:
    reports = four_runs.app.reports
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "history", "--check", "flappy", f"--reports-dir={reports}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "readers-app:flappy [P2] the webhook answers Telegram"
    states = [line.split()[3] for line in lines[1:] if re.match(r"  \d{4}-", line)]
    assert states[:4] == ["green", "RED", "green", "RED"]
    assert "turned red 2 time(s); 3 change(s) of state in the last" in done.stdout
    assert "(flapping)" in done.stdout
    assert "stdout 'timeout' != 'ok'" in done.stdout
    system = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook",
            "history",
            "--system",
            "readers-app",
            "--markers",
            "daily",
            f"--reports-dir={reports}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert system.stdout.count("readers-app:") >= 7
    missing = subprocess.run(
        [sys.executable, "-m", "runbook", "history", f"--reports-dir={reports / 'nowhere'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 4 and "no run history" in missing.stderr


def test_suite_records_into_postgres(empty_pg: str, tmp_path: Path, health: ThreadingHTTPServer) -> None:
    """A runner that keeps nothing: two runs in fresh folders compare through PostgreSQL."""
    first = ReadersApp(tmp_path / "runner-1", health.server_address[1]).write()
    first.break_("worker")
    one = first.run(f"--history-dsn={empty_pg}")
    assert one.changed("new") == ["worker-queue"]
    shutil.rmtree(first.reports)  # the next job's runner starts empty
    two = first.run(f"--history-dsn={empty_pg}")
    assert two.changed("still_failing") == ["worker-queue"]
    assert not (first.reports / "history.sqlite").exists()
    assert HISTORY_PASSWORD not in two.output
    with HistoryStore.open(empty_pg) as store:
        assert store.run_count() == 2


def test_unreachable_history_dsn_is_exit_4(tmp_path: Path, health: ThreadingHTTPServer) -> None:
    app = ReadersApp(tmp_path, health.server_address[1]).write()
    done = app.run("--history-dsn=postgresql://nobody:Secret-Pass-42@127.0.0.1:9/none")
    assert done.returncode == 4, done.output[-3000:]
    assert "history store postgresql://nobody:***@127.0.0.1:9/none: cannot open" in done.output
    assert "Secret-Pass-42" not in done.output
    assert not app.reports.exists()  # stopped before it made a run folder


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("pytest.ini", "[pytest]\nrunbook_reports_dir = var/runs\n"),
        ("pyproject.toml", '[tool.pytest.ini_options]\nrunbook_reports_dir = "var/runs"\n'),
        ("tox.ini", "[tox]\nenv_list = daily\n\n[pytest]\nrunbook_reports_dir = var/runs\n"),
    ],
)
def test_history_command_reads_the_reports_folder_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], file: str, text: str
) -> None:
    """Like pytest: the first settings file up from here, its value relative to its folder."""
    from runbook.__main__ import main

    (tmp_path / file).write_text(text, encoding="utf-8")
    store = tmp_path / "var" / "runs" / "history.sqlite"
    store.parent.mkdir(parents=True)
    with HistoryStore.open(str(store)) as history:
        history.record_run(run_info(1), [result("a", "failed")], window=10)
    (tmp_path / "systems").mkdir()
    monkeypatch.chdir(tmp_path / "systems")  # a subfolder, as pytest would be started from
    monkeypatch.delenv("RUNBOOK_HISTORY_DSN", raising=False)
    assert main(["history"]) == 0
    assert "app:a [P2] A" in capsys.readouterr().out
    assert main(["history", "--reports-dir", "elsewhere"]) == 4  # the option still wins
