"""The three readers against the calendar lab: history across faults, incident ticket, waivers, the gate.

The lab version of the readers' proofs (the fast ones run on local:// descriptions:
test_history.py, test_incident.py, test_waivers.py, test_notify.py, test_export.py,
test_readiness.py). Consecutive daily runs of the calendar's lab file share one reports
folder (so one history), with faults injected and healed between them through `lab.api`:

    1 healthy                      -> nothing to compare
    2 stale-backup                 -> backup-fresh new
    3 stale-backup + redis-down    -> backup-fresh still failing (2 runs); redis checks new
    4 healed                       -> all three resolved
    5 cron-missing, 6 healed, 7 cron-missing -> backup-cron flapping (3 changes)

then an incident run with bot-down (incident.md against the runbook's template, P1, the
bundle), a waived fault (exit 0), and the smoke gate with --wait-ready while the bot is
brought back. Needs root and the lab (`python -m lab up`); run by hand or by `make test`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lab_harness import REPO, lab_environment, run_checklist

from lab import api as lab
from selftests.readers_kit import Receiver
from selftests.test_incident import runbook_template, template_fields

SYSTEM = "ai-calendar-assistant"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"


def summary(reports: Path) -> dict[str, Any]:
    return json.loads((reports / "latest" / "summary.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def changed(reports: Path, status: str) -> dict[str, dict[str, Any]]:
    history = summary(reports)["history"]
    assert history is not None
    return {change["check_id"]: change for change in history[status]}


@pytest.fixture(scope="module")
def healthy_lab() -> Iterator[None]:
    lab.up(SYSTEM)
    lab.heal(SYSTEM)
    yield
    lab.heal(SYSTEM)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-readers") / "reports"


def daily(reports: Path, *extra: str) -> int:
    code, _, output = run_checklist(reports, *extra, systems=LAB_FILE)
    assert code in (0, 1), output[-3000:]
    return code


@pytest.fixture(scope="module")
def consecutive(healthy_lab: None, reports: Path) -> list[dict[str, dict[str, dict[str, Any]]]]:
    """The seven daily runs; per run, its history lists by status."""
    seen = []

    def run() -> None:
        daily(reports)
        seen.append(
            {status: changed(reports, status) for status in ("new", "still_failing", "flapping", "resolved")}
        )

    try:
        run()
        lab.break_fault(SYSTEM, "stale-backup")
        run()
        lab.break_fault(SYSTEM, "redis-down")
        run()
        lab.heal(SYSTEM)
        run()
        for step in ("break", "heal", "break"):
            if step == "break":
                lab.break_fault(SYSTEM, "cron-missing")
            else:
                lab.heal(SYSTEM)
            run()
    finally:
        lab.heal(SYSTEM)
    return seen


def test_first_run_has_nothing_to_compare(consecutive: list[dict[str, Any]]) -> None:
    assert all(not consecutive[0][status] for status in consecutive[0])


def test_stale_backup_is_new_then_still_failing(consecutive: list[dict[str, Any]]) -> None:
    assert set(consecutive[1]["new"]) == {"backup-fresh"}
    third = consecutive[2]
    assert third["still_failing"]["backup-fresh"]["runs"] == 2
    assert "redis-running" in third["new"]  # bot-to-redis is incident-only: not in a daily run


def test_heal_resolves(consecutive: list[dict[str, Any]]) -> None:
    assert {"backup-fresh", "redis-running"} <= set(consecutive[3]["resolved"])
    assert not consecutive[3]["new"] and not consecutive[3]["still_failing"]


def test_cron_flapping(consecutive: list[dict[str, Any]]) -> None:
    assert "backup-cron" in consecutive[4]["new"]
    assert "backup-cron" in consecutive[5]["resolved"]
    assert consecutive[6]["flapping"]["backup-cron"]["changes"] == 3


def test_history_command_on_the_lab_history(consecutive: list[dict[str, Any]], reports: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "history", "--check", "backup-fresh", f"--reports-dir={reports}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"RED\s+2 runs .*newest backup \d+\.\dh old > 25h", done.stdout)
    assert "turned red 1 time(s)" in done.stdout


def test_html_history_section_in_chromium(
    consecutive: list[dict[str, Any]], reports: Path, tmp_path: Path
) -> None:
    from selftests.test_reports import chromium

    dom = chromium(
        "--dump-dom", url=(reports / "latest" / "report.html").resolve().as_uri(), profile=tmp_path
    )
    assert 'id="rb-history"' in dom and "Flapping (1)" in dom


def test_incident_ticket_for_bot_down(healthy_lab: None, tmp_path: Path) -> None:
    lab.break_fault(SYSTEM, "bot-down")
    try:
        code, _, output = run_checklist(tmp_path, "--bundle", systems=LAB_FILE, marker="incident")
    finally:
        lab.heal(SYSTEM)
    assert code == 1, output[-3000:]
    folder = (tmp_path / "latest").resolve()
    text = (folder / "incident.md").read_text(encoding="utf-8")
    assert template_fields(text) == template_fields(runbook_template())
    assert text.startswith("[SEVERITY: P1]")
    assert "[SERVICE: AI Calendar Assistant" in text or f"({SYSTEM})]" in text
    assert "bot-running" in text.split("СИМПТОМЫ:")[1].split("ДЕЙСТВИЯ ПРЕДПРИНЯТЫ:")[0]
    assert "L1 — " in text.split("ETA:")[1]  # first seen now: the on-call starts
    with tarfile.open(folder / "bundle.tar.gz") as bundle:
        names = bundle.getnames()
        passphrase = lab_environment().get("CALENDAR_BACKUP_PASSPHRASE", "")
        for member in bundle.getmembers():
            data = bundle.extractfile(member)
            assert data is not None
            if passphrase:
                assert passphrase not in data.read().decode("utf-8", errors="replace"), member.name
    assert f"{folder.name}/incident.md" in names


def test_waived_fault_keeps_the_checklist_green(healthy_lab: None, tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yml"
    expires = (datetime.now(UTC) + timedelta(days=2)).date()
    waivers.write_text(
        f"waivers:\n  - check: backup-cron\n    justification: cron moves to systemd timers\n"
        f"    expires: {expires}\n    owner: ops\n",
        encoding="utf-8",
    )
    lab.break_fault(SYSTEM, "cron-missing")
    try:
        code, records, output = run_checklist(tmp_path / "reports", f"--waivers={waivers}", systems=LAB_FILE)
    finally:
        lab.heal(SYSTEM)
    assert code == 0, output[-3000:]
    assert records["backup-cron"]["outcome"] == "waived"


def test_notifications_and_textfile_on_the_lab(healthy_lab: None, tmp_path: Path) -> None:
    receiver_runs = Receiver().serve()
    receiver = next(receiver_runs)
    try:
        lab.break_fault(SYSTEM, "stale-backup")
        prom = tmp_path / "runbook-daily.prom"
        code, _, output = run_checklist(
            tmp_path / "reports",
            f"--webhook-url={receiver.url('/hook')}",
            "--notify=changes",
            f"--metrics-textfile={prom}",
            systems=LAB_FILE,
        )
    finally:
        lab.heal(SYSTEM)
        next(receiver_runs, None)
    assert code == 1, output[-3000:]
    (hook,) = receiver.requests
    assert [c["check_id"] for c in hook.json()["changes"]["new"]] == ["backup-fresh"]
    assert 'runbook_check_success{check="backup-fresh",severity="P2",system="ai-calendar-assistant"} 0.0' in (
        prom.read_text(encoding="utf-8")
    )


def test_wait_ready_while_the_bot_comes_back(healthy_lab: None, tmp_path: Path) -> None:
    lab.break_fault(SYSTEM, "bot-down")
    healing: list[float] = []

    def heal() -> None:
        healing.append(time.time())
        lab.heal(SYSTEM)

    healer = threading.Timer(8, heal)
    healer.start()
    began = time.monotonic()
    try:
        code, records, output = run_checklist(tmp_path, "--wait-ready=120s", systems=LAB_FILE, marker="smoke")
    finally:
        healer.join()
        lab.heal(SYSTEM)
    assert code == 0, output[-3000:]
    waited = [record for record in records.values() if record["attempts"] > 1]
    assert waited, "nothing was waited for"
    # Green only once the heal had begun, counted from the run's start (however slow the runner
    # was to start it): the time a check turned green is the service's, not its turn's.
    run = json.loads((tmp_path / "latest" / "summary.json").read_text(encoding="utf-8"))["run"]
    started = datetime.fromisoformat(run["started"].replace("Z", "+00:00")).timestamp()
    healed_after = healing[0] - started
    assert all(record["ready_after"] and record["ready_after"] >= healed_after - 1 for record in waited)
    assert time.monotonic() - began < 150
