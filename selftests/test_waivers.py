"""Waivers: valid, expired and stale ones applied to a real run; a malformed file is exit 4.

readers-app on local:// with three checks broken; the waiver file accepts two of them (one
by its full id, one by a glob on the check id), has an expired waiver for the third and a
waiver that matches nothing. The run must fail only for the check whose waiver expired,
and every report must say what each waiver did.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from runbook.readers.waivers import load_waivers
from selftests.readers_kit import SYSTEM, ReadersApp, Run

# Set again when the waivers file is written: a run that starts before midnight UTC and reaches
# this module after it (CI did) must date the waivers by the day the checklist runs on.
TODAY = datetime.now(UTC).date()
FILE = """\
waivers:
  - check: "{system}:worker-queue"
    justification: the worker moves to the new host this week (OPS-142)
    expires: {future}
    owner: alice
  - check: "cache-*"
    justification: cache warming is disabled during the migration
    expires: {today}
  - check: flappy
    justification: webhook flaps until Telegram fixes their side
    expires: {past}
    owner: bob
  - check: "no-such-check-*"
    justification: left over from last quarter
    expires: {future}
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, health: ThreadingHTTPServer) -> ReadersApp:
    global TODAY
    TODAY = datetime.now(UTC).date()
    app = ReadersApp(tmp_path_factory.mktemp("waivers"), health.server_address[1]).write()
    future, past = TODAY + timedelta(days=7), TODAY - timedelta(days=1)
    (app.base / "waivers.yml").write_text(
        FILE.format(system=SYSTEM, future=future, today=TODAY, past=past), encoding="utf-8"
    )
    return app


@pytest.fixture(scope="module")
def waived_run(app: ReadersApp) -> Run:
    for name in ("worker", "cache", "flappy"):
        app.break_(name)
    return app.run(f"--waivers={app.base / 'waivers.yml'}", "-rA")


@pytest.mark.slow
def test_only_the_expired_waivers_failure_fails_the_run(waived_run: Run) -> None:
    assert waived_run.returncode == 1, waived_run.output[-3000:]
    outcomes = waived_run.outcomes()
    assert outcomes["worker-queue"] == "waived"
    assert outcomes["cache-warm"] == "waived"  # its waiver's last day is today
    assert outcomes["flappy"] == "failed"
    assert waived_run.summary()["run"]["counts"]["waived"] == 2
    assert waived_run.summary()["run"]["failures_by_severity"]["P2"] == 1


@pytest.mark.slow
def test_summary_says_what_each_waiver_did(waived_run: Run) -> None:
    waivers = waived_run.summary()["waivers"]
    assert [w["check"] for w in waivers["applied"]] == [f"{SYSTEM}:worker-queue", "cache-*"]
    assert waivers["applied"][0]["checks"] == [f"{SYSTEM}:worker-queue"]
    assert [w["check"] for w in waivers["expired"]] == ["flappy"]
    assert [w["check"] for w in waivers["stale"]] == ["no-such-check-*"]
    records = {check["check_id"]: check for check in waived_run.summary()["checks"]}
    assert records["worker-queue"]["waiver"].startswith(f"waived until {TODAY + timedelta(days=7)}, alice:")
    assert records["flappy"]["waiver"].startswith(f"waiver expired on {TODAY - timedelta(days=1)}")


def test_terminal_lists_waivers(waived_run: Run) -> None:
    output = waived_run.output
    assert "runbook waivers (waivers.yml)" in output
    assert f"waived: {SYSTEM}:worker-queue ({SYSTEM}:worker-queue, until" in output
    assert f"expired on {TODAY - timedelta(days=1)}: flappy: {SYSTEM}:flappy fail(s) again" in output
    assert "stale (matched no failing check): no-such-check-*" in output
    assert re.search(r"XFAIL .*worker-queue\] - waived until", output)
    assert "1 failed" in output and "2 xfailed" in output


def test_junit_shows_waived_as_skipped_and_expired_as_failed(waived_run: Run) -> None:
    root = ET.parse(waived_run.folder / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    worker = cases[f"test_health[{SYSTEM}:worker-queue]"].find("skipped")
    assert worker is not None and worker.get("type") == "pytest.xfail"
    assert (worker.get("message") or "").startswith("waived until")
    flappy = cases[f"test_health[{SYSTEM}:flappy]"].find("failure")
    assert flappy is not None
    assert (flappy.get("message") or "").endswith(f"[waiver expired {TODAY - timedelta(days=1)}]")
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["runbook.waivers"] == "applied=2 expired=1 stale=1"


def test_html_rows_read_waived(waived_run: Run) -> None:
    page = html.unescape((waived_run.folder / "report.html").read_text(encoding="utf-8"))
    assert page.count('<td class="col-result">Waived</td>') == 2
    assert 'class="rb-waiver">waived until' in page  # the waived row's detail
    assert "stale (matched no failing check): no-such-check-*" in page


@pytest.mark.slow
def test_all_failures_waived_is_exit_0(app: ReadersApp) -> None:
    app.heal("flappy")
    run = app.run(f"--waivers={app.base / 'waivers.yml'}")
    assert run.returncode == 0, run.output[-3000:]
    assert run.history()["new"] == [] and run.history()["still_failing"] == []  # waived: no one's to-do
    app.break_("flappy")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "waivers:\n  - check: a\n    expires: 2030-01-01\n",
            "waivers[0] (check a).justification: Field required",
        ),
        ("waivers:\n  - check: a\n    justification: x\n", "waivers[0] (check a).expires: Field required"),
        (
            "waivers:\n  - {check: a, justification: x, expires: 2030-01-01}\n"
            "  - {check: b, justification: ' ', expires: 2030-01-01}\n",
            "waivers[1] (check b).justification: must not be blank",
        ),
        ("waivers:\n  - {check: a, justification: x, expires: soon}\n", "waivers[0] (check a).expires:"),
        ("waivers:\n  - {check: a, justification: x, expires: 2030-01-01, owenr: al}\n", "owenr: Extra"),
        ("- check: a\n", "top level must be a mapping"),
        ("waivers: [\n", "invalid YAML"),
    ],
)
def test_malformed_file_names_the_entry(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(pytest.UsageError) as caught:
        load_waivers(path)
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.slow
def test_malformed_file_stops_the_run_with_exit_4(app: ReadersApp, tmp_path: Path) -> None:
    broken = tmp_path / "waivers.yml"
    broken.write_text("waivers:\n  - check: worker-*\n    expires: 2030-01-01\n", encoding="utf-8")
    before = sorted(app.reports.iterdir())
    run = app.run(f"--waivers={broken}")
    assert run.returncode == 4, run.output[-3000:]
    assert "waivers[0] (check worker-*).justification: Field required" in run.output
    assert "Traceback" not in run.output
    assert sorted(app.reports.iterdir()) == before  # no run folder


def test_dates_are_days(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text(json.dumps({"waivers": [{"check": "a", "justification": "x", "expires": "2030-01-31"}]}))
    (waiver,) = load_waivers(path)
    assert waiver.expires == date(2030, 1, 31)
    assert waiver.active(date(2030, 1, 31)) and not waiver.active(date(2030, 2, 1))
