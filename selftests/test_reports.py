"""The reports of real runs: run folder and `latest`, summary.json, JUnit, the HTML in a browser.

Each run is `python -m pytest tests_health tests_backup tests_config` in a
subprocess from the project root, with the runbook plugin on, against a tiny
system on `local://` whose checks pass, fail or skip deterministically on files
in tmp_path. A secret read through `${...}` is printed by a failing command and
must appear in no report and not on the terminal.

Run with: .venv/bin/pytest -p no:runbook selftests/test_reports.py
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbook.readers import rundir
from runbook.record import CheckRecord
from runbook.report.html import EVIDENCE_LINES, PASSED_SHOWN, HtmlReport, _evidence, clean_metadata, title_for
from runbook.report.summary import RunRecorder
from runbook.secrets import SECRETS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The variable's name does not look secret: it is masked because a check reads it as ${...}.
SECRET_ENV = "RB_SELFTEST_CALENDAR_VALUE"
SECRET = "q7-Zebra-Lantern-5521"
# Dropped by name from the HTML environment table (pytest-metadata's --metadata).
METADATA_SECRET_NAME = "DEPLOY_TOKEN"
METADATA_SECRET = "meta-Quartz-Falcon-9034"
SYSTEM = "selftest-app"
FOLDER_NAME = re.compile(r"^\d{8}T\d{6}Z-[a-z0-9-]+$")
BACKUP_AGE_HOURS = 26.1

DESCRIPTION = """\
system: {system}
title: Selftest app
runbook: runbook.md
hosts:
  local: "local://"
checks:
  commands:
    - id: redis-ping
      title: Redis answers PING with PONG
      run: echo PONG
      expect_stdout: PONG
      severity: P2
      section: "2. Redis"
      remedy: docker exec calendar-redis redis-cli ping
    - id: redis-pang
      title: Redis replica answers PING with PONG
      run: echo PANG
      expect_stdout: PONG
      severity: P2
      section: "3.4 Redis connection refused"
      remedy: restart the replica with docker-compose up -d redis-replica
    - id: token-accepted
      title: the API accepts the service token
      run: 'echo "token ${{{secret_env}}} rejected by the API"; exit 3'
      severity: P1
      section: "2. P1: service fully down"
      remedy: rotate the service token in the vault and restart the bot
  backups:
    - id: backup-fresh
      title: newest nightly backup is younger than 25 h
      directory: {backups}
      pattern: "*.tar.gz*"
      max_age_hours: 25
      severity: P2
      section: "4.1 Automatic backups"
      remedy: run ./backup-calendar.sh by hand and check /var/log/calendar-backup.log
  env_files:
    - id: bot-env
      title: bot .env defines its keys
      path: {env_file}
      required: [TELEGRAM_BOT_TOKEN, YANDEX_GPT_API_KEY]
      severity: P3
      section: "3.6 Yandex GPT API errors"
      remedy: set the missing key in .env and restart telegram-bot
  http:
    - id: prometheus-healthy
      title: Prometheus is healthy
      url: http://127.0.0.1:9/-/healthy
      requires_feature: monitoring
      severity: P3
      section: "1. Daily Health Check (6. Monitoring)"
      remedy: docker-compose -f docker-compose.monitoring.yml ps
"""

# check id -> (outcome, severity)
EXPECTED = {
    "reachable-local": ("passed", "P1"),
    "redis-ping": ("passed", "P2"),
    "redis-pang": ("failed", "P2"),
    "token-accepted": ("failed", "P1"),
    "backup-fresh": ("failed", "P2"),
    "bot-env": ("failed", "P3"),
    "prometheus-healthy": ("skipped", "P3"),
}


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str  # stdout + stderr
    reports: Path

    def folders(self) -> list[Path]:
        if not self.reports.exists():
            return []
        return sorted(p for p in self.reports.iterdir() if p.is_dir() and not p.is_symlink())


def write_system(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    (base / "runbook.md").write_text("# Selftest runbook\n\n## 4.1 Automatic backups\n", encoding="utf-8")
    backups = base / "backups"
    backups.mkdir(exist_ok=True)
    archive = backups / "20261121_030000.tar.gz"
    archive.write_bytes(b"not really an archive")
    old = time.time() - BACKUP_AGE_HOURS * 3600
    os.utime(archive, (old, old))
    env_file = base / "bot.env"
    env_file.write_text("TELEGRAM_BOT_TOKEN=123:abc\nYANDEX_GPT_API_KEY=changeme\n", encoding="utf-8")
    description = base / "selftest-app.yml"
    description.write_text(
        DESCRIPTION.format(system=SYSTEM, secret_env=SECRET_ENV, backups=backups, env_file=env_file),
        encoding="utf-8",
    )
    return description


def run_suite(*args: str, reports: Path) -> Run:
    """The suite as an operator runs it (plugin on), from the project root."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env[SECRET_ENV] = SECRET
    command = [sys.executable, "-m", "pytest", "tests_health", "tests_backup", "tests_config", *args]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return Run(done.returncode, done.stdout + done.stderr, reports)


def chromium(*args: str, url: str, profile: Path) -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def decoded_data_uris(text: str) -> str:
    """The text of every base64 data: URI (the self-contained report's attached extras)."""
    found = re.findall(r"data:[\w/+.-]+(?:;charset=[\w-]+)?;base64,([A-Za-z0-9+/=]+)", text)
    return "\n".join(base64.b64decode(chunk).decode("utf-8", errors="replace") for chunk in found)


# -- the daily run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Run:
    base = tmp_path_factory.mktemp("daily")
    description = write_system(base)
    reports = base / "reports"
    return run_suite(
        "--systems",
        str(description),
        "-m",
        "daily",
        "--reports-dir",
        str(reports),
        "--metadata",
        METADATA_SECRET_NAME,
        METADATA_SECRET,
        "--metadata",
        "Deploy note",
        f"deployed with {SECRET}",
        reports=reports,
    )


@pytest.fixture(scope="module")
def folder(daily: Run) -> Path:
    folders = daily.folders()
    assert len(folders) == 1, (folders, daily.output[-3000:])
    return folders[0]


@pytest.fixture(scope="module")
def summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dom(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    profile = tmp_path_factory.mktemp("chromium-profile")
    return chromium("--dump-dom", url=(folder / "report.html").as_uri(), profile=profile)


@pytest.mark.slow
def test_failing_checks_exit_1(daily: Run) -> None:
    assert daily.returncode == 1, daily.output[-3000:]
    assert "Traceback" not in daily.output


@pytest.mark.slow
def test_run_folder_and_latest(daily: Run, folder: Path) -> None:
    assert FOLDER_NAME.match(folder.name), folder.name
    assert folder.name.endswith("-daily")
    for name in ("report.html", "junit.xml", "summary.json"):
        assert (folder / name).is_file(), name
    latest = daily.reports / "latest"
    assert latest.is_symlink()
    assert os.readlink(latest) == folder.name  # relative: the reports folder can move
    assert latest.resolve() == folder.resolve()


def test_terminal_names_the_reports(daily: Run, folder: Path) -> None:
    assert f"runbook reports: {folder}/ (report.html, junit.xml, summary.json)" in daily.output


def test_junit_failure_messages_carry_severity_and_section(folder: Path) -> None:
    tree = ET.parse(folder / "junit.xml")
    suite = tree.getroot().find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["runbook.systems"] == SYSTEM
    assert properties["runbook.markers"] == "daily"
    assert properties["runbook.failures_by_severity"] == "P1=1 P2=2 P3=1 P4=0"
    failures = {
        case.get("name"): case.find("failure")
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    }
    assert len(failures) == 4
    for name, failure in failures.items():
        assert failure is not None
        message = failure.get("message") or ""
        assert re.match(r"^\[P[1-4]\] §", message), (name, message)
        body = failure.text or ""
        for label in ("expected:", "found:", "remedy:", "runbook:"):
            assert label in body, (name, label, body)
    backup = failures[f"test_backup[{SYSTEM}:backup-fresh]"]
    assert backup is not None
    assert (backup.get("message") or "").startswith(
        f"[P2] §4.1 Automatic backups: newest backup {BACKUP_AGE_HOURS}h old > 25h"
    )
    assert "run ./backup-calendar.sh by hand" in (backup.text or "")
    skipped = [case for case in suite.iter("testcase") if case.find("skipped") is not None]
    assert [case.get("name") for case in skipped] == [f"test_health[{SYSTEM}:prometheus-healthy]"]


def test_summary_has_one_record_per_check(summary: dict[str, Any]) -> None:
    records = {record["check_id"]: record for record in summary["checks"]}
    assert len(summary["checks"]) == len(EXPECTED)
    assert {cid: (r["outcome"], r["severity"]) for cid, r in records.items()} == EXPECTED
    for record in summary["checks"]:
        assert record["system"] == SYSTEM
        assert record["id"] == f"{SYSTEM}:{record['check_id']}"
        assert record["runbook_file"].endswith("runbook.md")
        assert record["host"] == "local"
        assert isinstance(record["duration"], float) and record["duration"] >= 0
    backup = records["backup-fresh"]
    assert backup["kind"] == "backups"
    assert backup["section"] == "4.1 Automatic backups"
    assert backup["title"] == "newest nightly backup is younger than 25 h"
    assert f"newest backup {BACKUP_AGE_HOURS}h old > 25h" in backup["message"]
    assert backup["expected"] == "newest backup younger than 25h"
    assert backup["remedy"].startswith("run ./backup-calendar.sh by hand")
    assert "YANDEX_GPT_API_KEY is placeholder" in records["bot-env"]["found"]
    assert "stdout 'PANG' != 'PONG'" in records["redis-pang"]["message"]
    assert records["redis-ping"]["message"] == "ok"
    skip = records["prometheus-healthy"]["message"]
    assert skip.startswith("skipped: ") and "feature 'monitoring'" in skip
    assert "***" in records["token-accepted"]["found"]


def test_summary_run_header(summary: dict[str, Any]) -> None:
    run = summary["run"]
    assert summary["format"] == "runbook-summary/1"
    assert run["marker_expression"] == "daily"
    assert run["systems"] == [SYSTEM]
    assert run["exit_status"] == 1
    assert run["counts"] == {"passed": 2, "failed": 4, "skipped": 1, "error": 0, "waived": 0}
    assert run["failures_by_severity"] == {"P1": 1, "P2": 2, "P3": 1, "P4": 0}
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert stamp.match(run["started"]) and stamp.match(run["finished"])
    assert run["started"] <= run["finished"]


@pytest.mark.slow
def test_html_renders_the_failing_checks(dom: str) -> None:
    text = html.unescape(dom)
    assert "Daily checklist — selftest-app" in text
    # The failing backup row: title, expected, found and remedy, in the rendered table.
    assert "newest nightly backup is younger than 25 h" in text
    assert "<th>expected</th><td>newest backup younger than 25h</td>" in text
    assert f"newest backup {BACKUP_AGE_HOURS}h old > 25h" in text
    assert "run ./backup-calendar.sh by hand and check /var/log/calendar-backup.log" in text
    assert re.search(r'<td class="col-severity"[^>]*><span class="rb-sev rb-P2">P2</span>', text)
    assert "§ 4.1 Automatic backups" in text
    # Column headers and the failures-by-severity summary.
    for header in ("System", "Check", "Severity", "Runbook"):
        assert f">{header}</th>" in text
    assert re.search(r">P1: 1</span>.*>P2: 2</span>.*>P3: 1</span>.*>P4: 0</span>", text, re.S)
    # The evidence of the failing command is inline under its row.
    assert "token *** rejected by the API" in text
    assert re.search(r"<summary>stdout \(1 line\)</summary>", text)


def test_html_has_a_row_per_check_failures_first(folder: Path) -> None:
    """Static rows, written from the records: every check, failed first (P1 first), passed last."""
    page = (folder / "report.html").read_text(encoding="utf-8")
    table = page[page.index('id="results-table"') :]
    rows = re.findall(
        r'<tbody class="results-table-row r-(\w+)".*?<div class="rb-id">([\w-]+)</div>', table, re.S
    )
    assert {check: outcome for outcome, check in rows} == {
        check: outcome for check, (outcome, _) in EXPECTED.items()
    }
    outcomes = [outcome for outcome, _ in rows]
    assert outcomes == sorted(outcomes, key=["failed", "error", "waived", "skipped", "passed"].index)
    assert rows[0] == ("failed", "token-accepted")  # the only P1 failure


def test_long_evidence_keeps_its_end_inline_and_the_whole_as_a_link() -> None:
    text = "\n".join(f"line {number}" for number in range(EVIDENCE_LINES + 50))
    name, shown, count, whole = _evidence("stdout", text)
    assert (name, count) == ("stdout", EVIDENCE_LINES + 50)
    assert shown.splitlines() == text.splitlines()[-EVIDENCE_LINES:]
    assert whole is not None and base64.b64decode(whole.split(",", 1)[1]).decode() == text
    assert _evidence("stdout", "short")[3] is None


@pytest.mark.slow
def test_html_says_a_failure_once_and_the_summary_before_the_environment(dom: str) -> None:
    """In the table the details block says expected/found/remedy, once. The to-do list (Summary)
    comes before the Environment table, the table after both."""
    text = html.unescape(dom)
    table = text[text.index('id="results-table"') :]
    assert table.count(f"newest backup {BACKUP_AGE_HOURS}h old > 25h") == 1
    assert text.index('id="summary"') < text.index('id="environment-header"')
    assert text.index('id="environment"') < text.index('id="results-table"')


def test_html_runbook_link_points_at_the_runbook(dom: str, folder: Path) -> None:
    hrefs = set(re.findall(r'<a href="([^"]+)" target="_blank">§ ', dom))
    assert hrefs, "no runbook links"
    for href in hrefs:
        assert (folder / html.unescape(href)).resolve() == (folder.parent.parent / "runbook.md").resolve()


@pytest.mark.slow
def test_html_screenshot(folder: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    chromium(
        "--window-size=1400,1800",
        f"--screenshot={shot}",
        url=(folder / "report.html").as_uri(),
        profile=tmp_path,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RUNBOOK_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["RUNBOOK_KEEP_SCREENSHOT"])


def test_environment_table_hides_secrets(dom: str) -> None:
    assert "Deploy note" in dom
    assert "deployed with ***" in html.unescape(dom)
    assert METADATA_SECRET_NAME not in dom
    assert METADATA_SECRET not in dom


def test_secret_appears_nowhere(daily: Run, folder: Path) -> None:
    assert SECRET not in daily.output
    assert "***" in daily.output  # the failing command's output was there, masked
    for name in ("report.html", "junit.xml", "summary.json"):
        text = (folder / name).read_text(encoding="utf-8")
        assert SECRET not in text, name
        assert METADATA_SECRET not in text, name
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "token *** rejected by the API" in html.unescape(page)
    assert SECRET not in decoded_data_uris(page)  # long evidence's whole text (none this short)


# -- run folders ------------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_make_two_folders_and_latest_follows(tmp_path: Path) -> None:
    description = write_system(tmp_path)
    reports = tmp_path / "reports"
    common = ("--systems", str(description), "-k", "redis-ping", "--reports-dir", str(reports))
    first = run_suite(*common, "-m", "daily", reports=reports)
    second = run_suite(*common, "-m", "daily and not smoke", reports=reports)
    assert (first.returncode, second.returncode) == (0, 0), second.output[-3000:]
    folders = second.folders()
    assert len(folders) == 2, folders
    assert folders[0].name.endswith("-daily")
    assert folders[1].name.endswith("-daily-and-not-smoke")
    assert os.readlink(reports / "latest") == folders[1].name
    assert f"runbook reports: {folders[1]}/" in second.output
    records = json.loads((folders[1] / "summary.json").read_text(encoding="utf-8"))["checks"]
    assert [r["check_id"] for r in records] == ["redis-ping"]


@pytest.mark.slow
def test_html_option_makes_no_run_folder(tmp_path: Path) -> None:
    description = write_system(tmp_path)
    reports = tmp_path / "reports"
    page = tmp_path / "out" / "x.html"
    done = run_suite(
        "--systems",
        str(description),
        "-m",
        "daily",
        "--reports-dir",
        str(reports),
        "--html",
        str(page),
        reports=reports,
    )
    assert done.returncode == 1, done.output[-3000:]
    assert done.folders() == []
    assert not (reports / "latest").exists()
    assert page.is_file()
    assert (page.parent / "summary.json").is_file()
    assert not (page.parent / "junit.xml").exists()
    assert f"runbook reports: {page}, {page.parent / 'summary.json'}" in done.output


@pytest.mark.slow
def test_broken_description_exits_4_naming_file_and_field(tmp_path: Path) -> None:
    description = write_system(tmp_path)
    text = description.read_text(encoding="utf-8")
    description.write_text(text.replace("severity: P2\n", "severity: P7\n", 1), encoding="utf-8")
    reports = tmp_path / "reports"
    done = run_suite(
        "--systems", str(description), "-m", "daily", "--reports-dir", str(reports), reports=reports
    )
    assert done.returncode == 4, done.output[-3000:]
    assert str(description) in done.output
    assert "checks.commands[0] (id redis-ping).severity" in done.output
    assert "P1" in done.output and "P4" in done.output  # what is allowed instead of P7
    assert "Traceback" not in done.output
    assert done.folders() == []


# -- pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (None, "all"),
        ("", "all"),
        ("daily", "daily"),
        ("smoke", "smoke"),
        ("daily and not smoke", "daily-and-not-smoke"),
        ("(daily or incident)", "daily-or-incident"),
    ],
)
def test_slug(expression: str | None, expected: str) -> None:
    assert rundir.slug(expression) == expected


def test_failure_message() -> None:
    record = CheckRecord(
        system="s",
        check_id="backup-fresh",
        kind="backups",
        title="backup",
        nodeid="n",
        severity="P2",
        section="4.1 Backups",
        found="newest backup 26.1h old\n> 25h",
    )
    assert record.ci_message() == "[P2] §4.1 Backups: newest backup 26.1h old > 25h"


def test_title() -> None:
    assert title_for("daily", ["ai-calendar-assistant"]) == "Daily checklist — ai-calendar-assistant"
    assert title_for(None, ["a", "b"]) == "All checks — a, b"
    assert title_for("daily and not smoke", ["a"]) == "Checks (daily and not smoke) — a"


def test_clean_metadata() -> None:
    SECRETS.add("hunter2-secret-value", "TEST_VALUE")
    try:
        metadata: dict[str, Any] = {
            "CI_JOB_TOKEN": "abc",
            "Note": "uses hunter2-secret-value <b>",
            "Packages": {"pytest": "9", "DB_PASSWORD": "x"},
        }
        clean_metadata(metadata)
        assert metadata == {"Note": "uses *** <b>", "Packages": {"pytest": "9"}}  # the page escapes
    finally:
        SECRETS.clear()


def test_point_latest_replaces_the_link(tmp_path: Path) -> None:
    first, second = tmp_path / "20260101T000000Z-daily", tmp_path / "20260101T000001Z-daily"
    first.mkdir()
    second.mkdir()
    rundir.point_latest(first)
    rundir.point_latest(second)
    assert os.readlink(tmp_path / "latest") == second.name
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        first.name,
        second.name,
        "latest",
    ]


def test_same_second_runs_get_distinct_folders(tmp_path: Path) -> None:
    assert rundir.make_run_folder(tmp_path, "x-daily").name == "x-daily"
    assert rundir.make_run_folder(tmp_path, "x-daily").name == "x-daily-2"


# -- the same run on two xdist workers ----------------------------------------------------


@pytest.fixture(scope="module")
def parallel_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("parallel")
    description = write_system(base)
    reports = base / "reports"
    run = run_suite(
        f"--systems={description}", "-m", "daily", f"--reports-dir={reports}", "-n", "2", reports=reports
    )
    folders = run.folders()
    assert len(folders) == 1, (folders, run.output[-3000:])
    assert run.returncode == 1, run.output[-3000:]
    return folders[0]


def same_run(value: Any) -> Any:
    """The two runs differ only in their temporary folders."""
    return re.sub(r"/\S+/(daily|parallel)\d*/", "<base>/", value) if isinstance(value, str) else value


def junit_failures(folder: Path) -> dict[str, tuple[str, str]]:
    """testcase name -> (failure message, failure text)."""
    root = ET.parse(folder / "junit.xml").getroot()
    return {
        str(case.get("name")): (failure.get("message") or "", failure.text or "")
        for case in root.iter("testcase")
        if (failure := case.find("failure")) is not None
    }


@pytest.mark.slow
def test_xdist_keeps_the_junit_failure_messages(folder: Path, parallel_folder: Path) -> None:
    serial, parallel = junit_failures(folder), junit_failures(parallel_folder)
    assert set(parallel) == set(serial)
    for name, (message, text) in parallel.items():
        assert re.match(r"^\[P[1-4]\] §", message), (name, message)
        assert same_run(message) == same_run(serial[name][0]), name
        for label in ("expected:", "found:", "remedy:", "runbook:"):
            assert label in text, (name, label)


@pytest.mark.slow
def test_xdist_keeps_the_summary_and_html_columns(summary: dict[str, Any], parallel_folder: Path) -> None:
    parallel = json.loads((parallel_folder / "summary.json").read_text(encoding="utf-8"))
    by_id = {check["check_id"]: check for check in parallel["checks"]}
    for check in summary["checks"]:
        twin = by_id[check["check_id"]]
        for key in ("outcome", "severity", "section", "message", "remedy", "host"):
            assert same_run(twin[key]) == same_run(check[key]), (check["check_id"], key)
    html_text = (parallel_folder / "report.html").read_text(encoding="utf-8")
    assert "rb-sev rb-P2" in html_text
    assert "newest backup" in html_text


@pytest.mark.slow
def test_css_option_is_added_to_the_page_and_a_missing_file_is_exit_4(tmp_path: Path) -> None:
    description = write_system(tmp_path)
    css = tmp_path / "site.css"
    css.write_text('h1 > span { color: rebeccapurple; } p::after { content: "</style>"; }', encoding="utf-8")
    reports = tmp_path / "reports"
    options = ["--systems", str(description), "-m", "daily", "--reports-dir", str(reports)]
    done = run_suite(*options, "--css", str(css), reports=reports)
    assert done.returncode == 1, done.output[-3000:]
    page = (done.folders()[0] / "report.html").read_text(encoding="utf-8")
    assert 'h1 > span { color: rebeccapurple; } p::after { content: "<\\/style>"; }' in page
    missing = run_suite(*options, "--css", str(tmp_path / "nope.css"), reports=reports)
    assert missing.returncode == 4, missing.output[-3000:]
    assert f"--css {tmp_path / 'nope.css'}: no such file" in missing.output
    assert missing.folders() == done.folders()  # refused before a run folder was made


@pytest.mark.slow
def test_collect_only_writes_no_page_even_with_html(tmp_path: Path) -> None:
    description = write_system(tmp_path)
    page = tmp_path / "out" / "x.html"
    done = run_suite("--systems", str(description), "--co", "--html", str(page), reports=tmp_path / "r")
    assert done.returncode == 0, done.output[-3000:]
    assert not page.exists() and not (tmp_path / "r").exists()


def page_of(records: list[CheckRecord], tmp_path: Path) -> str:
    """report.html of these records, rendered without a run (the recorder as a run leaves it)."""
    config = types.SimpleNamespace(stash={}, rootpath=tmp_path, getoption=lambda *args, **kwargs: None)
    recorder = RunRecorder(config, ["bench"])  # type: ignore[arg-type]
    recorder.records = {record.nodeid: record for record in records}
    return HtmlReport(config, recorder, tmp_path / "report.html").render()  # type: ignore[arg-type]


def passed_and_failed(passed: int) -> list[CheckRecord]:
    records = [
        CheckRecord(system="bench", check_id=f"c{index}", kind="commands", title="t", nodeid=f"n{index}")
        for index in range(passed)
    ]
    failed = CheckRecord(system="bench", check_id="bad", kind="commands", title="t", nodeid="bad")
    failed.outcome, failed.severity, failed.found = "failed", "P1", "down"
    return [*records, failed]


def test_many_passed_rows_open_folded_few_open_shown(tmp_path: Path) -> None:
    many = page_of(passed_and_failed(PASSED_SHOWN + 1), tmp_path)
    assert '<table id="results-table" class="hide-passed ">' in many
    assert 'data-test-result="passed">' in many  # the box unticked
    assert "the passed rows are folded" in many
    assert many.index("results-table-row r-failed") < many.index("results-table-row r-passed")
    few = page_of(passed_and_failed(PASSED_SHOWN), tmp_path)
    assert '<table id="results-table">' in few and 'data-test-result="passed" checked>' in few


def test_the_page_escapes_and_masks_every_value(tmp_path: Path) -> None:
    SECRETS.add("Page-Secret-7781", "TOKEN")
    try:
        record = passed_and_failed(0)[0]
        record.title = record.found = "<script>alert(1)</script> Page-Secret-7781"
        record.evidence = {"stdout": "<img src=x onerror=alert(2)>\nPage-Secret-7781"}
        page = page_of([record], tmp_path)
    finally:
        SECRETS.clear()
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ***" in page
    assert "Page-Secret-7781" not in page
