"""The incident ticket: incident.md against the runbook's template, escalation by history, the bundle.

`-m incident --bundle` runs against readers-app on local:// after the history was given an
earlier incident run in which the P1 check already failed 20 minutes before: incident.md must
have the template's sections in the template's order (read from the calendar runbook's
section 5 itself), the failure's found value, the passed checks as actions, the remedies,
and escalation level L3 ("15-30 мин"). The bundle must hold the run's files and evidence
and no form of the secret the failing command printed. Retention keeps what an open
bundle refers to until `python -m runbook incident close`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from runbook.describe.escalation import Escalation
from runbook.readers import incident, retention
from runbook.readers.changes import iso_time, scope_of
from runbook.readers.escalation import escalate, read_contacts
from runbook.readers.history import HistoryStore, Result, RunInfo
from runbook.record import CheckRecord
from selftests.readers_kit import CALENDAR_RUNBOOK, ROOT, SECRET, SYSTEM, ReadersApp, Run, calendar_escalation
from selftests.test_never_leak import derived_forms

# Every test here reads whole runs made by a module fixture (or is one): make test runs them.
pytestmark = pytest.mark.slow

CALENDAR_RULES = Escalation.model_validate(calendar_escalation())

TEMPLATE_FIELD = re.compile(r"^(?:\[(?P<bracket>[A-Z]+):|(?P<heading>[A-ZА-ЯЁ][A-ZА-ЯЁ ]*[A-ZА-ЯЁ]):)")


def template_fields(text: str) -> list[str]:
    """SEVERITY, SERVICE, TIME, СИМПТОМЫ, ... in order: the lines of a notification that name a field."""
    fields = []
    for line in text.splitlines():
        match = TEMPLATE_FIELD.match(line.strip())
        if match:
            fields.append(match.group("bracket") or match.group("heading"))
    return fields


def runbook_template() -> str:
    if not CALENDAR_RUNBOOK.is_file():
        pytest.skip(f"{CALENDAR_RUNBOOK} is not beside the repository")
    text = CALENDAR_RUNBOOK.read_text(encoding="utf-8")
    section = text[text.index("### Шаблон уведомления об инциденте") :]
    return section.split("```", 2)[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, health: ThreadingHTTPServer) -> ReadersApp:
    return ReadersApp(tmp_path_factory.mktemp("incident"), health.server_address[1]).write()


def seed_history(app: ReadersApp, minutes_ago: float, failing: str) -> None:
    """An earlier incident run in which `failing` already failed (as a run at that time would)."""
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    run = RunInfo(
        scope_of([SYSTEM], "incident"), iso_time(started), iso_time(started), "incident", (SYSTEM,), 1, None
    )
    result = Result(f"{SYSTEM}:{failing}", SYSTEM, failing, "failed", "P1", failing, "broken")
    with HistoryStore.open(str(app.reports / "history.sqlite")) as store:
        store.record_run(run, [result], window=10)


@pytest.fixture(scope="module")
def incident_run(app: ReadersApp) -> Run:
    app.reports.mkdir(parents=True, exist_ok=True)
    seed_history(app, 20, "api-config")
    app.break_("api", "missing")
    app.break_("token", "revoked")
    app.break_("cache")
    return app.run("--bundle", marker="incident")


@pytest.fixture(scope="module")
def incident_md(incident_run: Run) -> str:
    assert incident_run.returncode == 1, incident_run.output[-3000:]
    return (incident_run.folder / "incident.md").read_text(encoding="utf-8")


def test_incident_md_has_the_templates_sections_in_order(incident_md: str) -> None:
    expected = template_fields(runbook_template())
    assert expected == ["SEVERITY", "SERVICE", "TIME", "СИМПТОМЫ", "ДЕЙСТВИЯ ПРЕДПРИНЯТЫ", "ТЕКУЩИЙ СТАТУС",
                        "ТРЕБУЕТСЯ", "ETA"]  # fmt: skip
    assert template_fields(incident_md) == expected


def test_incident_md_is_filled_in(incident_md: str, incident_run: Run) -> None:
    lines = incident_md.splitlines()
    assert lines[0] == "[SEVERITY: P1]  "
    assert lines[1] == f"[SERVICE: Readers App ({SYSTEM})]  "
    assert re.fullmatch(r"\[TIME: \d{4}-\d\d-\d\d \d\d:\d\d UTC\]", lines[2])
    symptoms = incident_md.split("СИМПТОМЫ:")[1].split("ДЕЙСТВИЯ ПРЕДПРИНЯТЫ:")[0]
    assert (
        f"- [P1] the API's config is in place ({SYSTEM}:api-config): `stdout 'missing' != 'ok'`" in symptoms
    )
    assert re.search(r"\(с \d{4}-\d\d-\d\d \d\d:\d\d UTC, 2 прогонов подряд\)", symptoms)
    assert "(впервые)" in symptoms  # the token check failed for the first time
    assert f"({SYSTEM}:cache-warm): `stdout 'broken' != 'ok'`" in symptoms  # after the P1s
    actions = incident_md.split("ДЕЙСТВИЯ ПРЕДПРИНЯТЫ:")[1].split("ТЕКУЩИЙ СТАТУС:")[0]
    assert re.search(r"^1\. \[P1\] Host local answers \(readers-app:reachable-local\) - OK$", actions, re.M)
    assert f"({SYSTEM}:health) - OK" in actions
    assert "api-config" not in actions
    required = incident_md.split("ТРЕБУЕТСЯ:")[1].split("ETA:")[0]
    assert "`restore the config from the last backup and restart the API`" in required
    assert "`rotate the bot token`" in required
    assert f"отчёт: `{incident_run.folder / 'report.html'}`" in incident_md


def test_escalation_follows_how_long_the_worst_failure_lasted(incident_md: str) -> None:
    eta = incident_md.split("ETA:")[1]
    assert "L3 — DevOps/SRE, devops@example.com" in eta
    assert re.search(r"P1 длится 2\d min \(15-30 мин: нет решения → эскалация на L3\)", eta)


def test_markdown_is_safe_to_paste(incident_md: str) -> None:
    assert "<" not in incident_md.replace("\\<", "")  # no raw HTML
    for line in incident_md.splitlines():
        assert line.count("`") % 2 == 0, line  # code spans closed on their line


def test_english_variant(app: ReadersApp) -> None:
    run = app.run("--incident-lang=en", marker="incident")
    text = (run.folder / "incident.md").read_text(encoding="utf-8")
    assert template_fields(text) == [
        "SEVERITY", "SERVICE", "TIME", "SYMPTOMS", "ACTIONS TAKEN", "CURRENT STATUS", "REQUIRED", "ETA",
    ]  # fmt: skip
    assert "has lasted" in text and "escalate to L3" in text


def test_incident_option_on_a_daily_run(app: ReadersApp) -> None:
    run = app.run("--incident")
    assert (run.folder / "incident.md").is_file()
    assert not (app.run().folder / "incident.md").exists()


def test_bundle_holds_the_run_and_no_secret(incident_run: Run) -> None:
    bundle = incident_run.folder / "bundle.tar.gz"
    with tarfile.open(bundle) as archive:
        names = archive.getnames()
        texts = {name: archive.extractfile(name).read().decode() for name in names}  # type: ignore[union-attr]
    prefix = incident_run.folder.name
    for name in ("report.html", "junit.xml", "summary.json", "incident.md", "incident.json"):
        assert f"{prefix}/{name}" in names
    assert f"{prefix}/evidence/{SYSTEM}/token-check/stdout.txt" in names
    assert "token *** state revoked" in texts[f"{prefix}/evidence/{SYSTEM}/token-check/stdout.txt"]
    for name, text in texts.items():
        for form in derived_forms(SECRET):
            assert form not in text, (name, form)
    assert f"runbook reports: {incident_run.folder}/ (report.html, junit.xml, summary.json, incident.md, " \
        "bundle.tar.gz)" in incident_run.output  # fmt: skip


def test_open_bundle_protects_its_runs_until_closed(incident_run: Run, app: ReadersApp) -> None:
    manifest = (incident_run.folder / "incident.json").read_text(encoding="utf-8")
    assert '"open": true' in manifest
    old = app.reports / "20200101T000000Z-incident"
    old.mkdir()
    (incident_run.folder / "incident.json").write_text(
        manifest.replace('"runs": [', f'"runs": [\n    "{old.name}",'), encoding="utf-8"
    )
    now = datetime.now(UTC)
    assert retention.prune(app.reports, keep_days=30, now=now) == []
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "incident", "close", str(incident_run.folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert retention.prune(app.reports, keep_days=30, now=now) == [old]


# -- pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "minutes", "level"),
    [("P1", 3, "L1"), ("P1", 10, "L2"), ("P1", 20, "L3"), ("P1", 45, "L4"), ("P1", 90, "L4"),
     ("P2", 10, "L1"), ("P2", 30, "L2"), ("P2", 300, "L2"), ("P3", 600, "L1")],
)  # fmt: skip
def test_escalation_matrix(severity: str, minutes: float, level: str) -> None:
    assert escalate(CALENDAR_RULES, severity, minutes * 60).level == level


def test_postmortem_after_an_hour() -> None:
    assert "постмортем обязателен" in escalate(CALENDAR_RULES, "P1", 61 * 60).text("ru")
    assert "postmortem recommended" in escalate(CALENDAR_RULES, "P2", 5 * 3600).text("en")


def test_a_system_without_a_matrix_names_no_level() -> None:
    """Only the calendar runbook has an escalation matrix: the others' tickets say ETA unknown only."""
    record = CheckRecord(
        system="s", check_id="a", kind="http", title="A", nodeid="n", severity="P1", outcome="failed"
    )
    now = datetime.now(UTC)
    for rules, says in ((None, "ETA: уточняется\n"), (CALENDAR_RULES, "ETA: уточняется (эскалация: L1 — ")):
        service = incident.Service("s", None, None, rules)
        text = incident.render([record], services=[service], started=now, now=now, changes=None, report=None)
        assert says in text, text


def test_contacts_come_from_the_runbook() -> None:
    if not CALENDAR_RUNBOOK.is_file():
        pytest.skip("no calendar runbook beside the repository")
    assert read_contacts(CALENDAR_RUNBOOK)["L4"] == ("Management", "cto@example.com")


def test_no_failures_reads_as_all_green() -> None:
    record = CheckRecord(system="s", check_id="a", kind="http", title="A", nodeid="n", severity="P1")
    now = datetime.now(UTC)
    text = incident.render(
        [record],
        services=[incident.Service("s", None, None)],
        started=now,
        now=now,
        changes=None,
        report=None,
    )
    assert text.startswith("[SEVERITY: нет]")
    assert "ТЕКУЩИЙ СТАТУС: Все проверки прошли" in text
    assert "ETA: уточняется\n" in text


def test_found_values_cannot_break_the_markdown() -> None:
    record = CheckRecord(
        system="s", check_id="a", kind="http", title="<b>*bold*</b> [x](http://evil)", nodeid="n",
        severity="P2", outcome="failed", found="body has ``` and `ticks` <script>",
    )  # fmt: skip
    now = datetime.now(UTC)
    text = incident.render([record], services=[], started=now, now=now, changes=None, report=None)
    line = next(line for line in text.splitlines() if line.startswith("- [P2]"))
    assert "\\<b>\\*bold\\*\\</b> [x\\](http://evil)" in line
    assert "````body has ``` and `ticks` <script>````" in line


def test_wanted() -> None:
    assert incident.wanted("incident", False)
    assert incident.wanted("daily or incident", False)
    assert not incident.wanted("daily and not incident", False)
    assert not incident.wanted("daily", False) and incident.wanted("daily", True)


def test_retention_keeps_newest_latest_and_recent(tmp_path: Path) -> None:
    names = ["20200101T000000Z-daily", "20200102T000000Z-daily", "20200103T000000Z-smoke", "notes"]
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / "latest").symlink_to("20200102T000000Z-daily")
    now = datetime(2020, 1, 20, tzinfo=UTC)
    deleted = retention.prune(tmp_path, keep_days=10, now=now)
    assert deleted == [tmp_path / "20200101T000000Z-daily"]  # the newest and `latest` stay
    assert (tmp_path / "notes").is_dir()
    assert retention.prune(tmp_path, keep_days=0, now=now) == []


def test_old_runs_deleted_after_a_run(app: ReadersApp) -> None:
    old = app.reports / "20200105T000000Z-daily"
    old.mkdir(parents=True)
    run = app.run("--keep-days=30")
    assert not old.exists()
    assert "retention: deleted 1 run folder(s) older than 30 days: 20200105T000000Z-daily" in run.output
