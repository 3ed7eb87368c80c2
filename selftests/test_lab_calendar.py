"""The calendar runbook against its lab: green when healthy, red with the right message per fault.

Each fault of `python -m lab faults ai-calendar-assistant` is injected, the daily
checklist runs as a user runs it (a pytest subprocess over SSH to the lab server),
and the set of failing checks must be exactly the fault's expected set: every other
check still passes. The first check's message must show the found value and the
threshold. Heal runs after each fault; the next fault's run (and the last test)
would show anything heal left behind as an unexpected failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import api as lab

REPO = Path(__file__).resolve().parents[1]
SYSTEM = "ai-calendar-assistant"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"
LAB_ENV = Path(os.environ.get("RUNBOOK_LAB_DIR", "/var/lib/runbook-lab")) / "lab.env"
MONITORING = {"prometheus-healthy", "grafana-healthy", "loki-ready"}

# fault -> {check id: pattern its message must match}: found value and threshold.
MESSAGES: dict[str, dict[str, str]] = {
    "bot-down": {
        "bot-running": r"telegram-bot is exited",
        "health": r"failed: ConnectError|Connection refused",
    },
    "restart-loop": {
        "bot-running": r"telegram-bot is (restarting|exited)",
        "bot-restarts": r"restarted \d+ times in the last 24h > 0",
    },
    "oom": {
        "bot-no-crash": r"OOM kill at .* UTC|exit 137 \(killed \(OOM\)\)",
        "bot-restarts": r"restarted 1 times in the last 24h > 0 .*exit codes 137",
    },
    "health-unhealthy": {"health": r"status 503 != 200"},
    "health-slow": {"health": r"no answer within 5s"},
    "disk-full": {"disk-root": r"\d+% used > 90% \(.* free of .*\)"},
    "error-burst": {"bot-errors": r"\d+ lines of telegram-bot's logs match .* in the last 24\.0h > 10"},
    "stale-backup": {"backup-fresh": r"newest backup \d+\.\dh old > 25h"},
    "tiny-backup": {
        "backup-size": r"newest backup \d+ bytes < 1000",
        "backup-integrity": r"lacks radicale_data\.tar\.gz, bot_data\.tar\.gz, \.env\.backup",
    },
    "corrupt-backup": {"backup-integrity": r"\.tar\.gz\.gpg is corrupt"},
    "retention-broken": {"backup-retention": r"1 backup\(s\) older than 31 days; oldest 40\.\dd"},
    "cron-missing": {"backup-cron": r"none runs backup-calendar\.sh"},
    "redis-down": {
        "redis-running": r"calendar-redis is exited",
        "bot-to-redis": r"cannot reach calendar-redis:6379",
    },
    "radicale-down": {
        "radicale-running": r"radicale-calendar is exited",
        "bot-to-radicale": r"cannot reach radicale-calendar:5232",
    },
    "wal-off": {"bot-db-wal": r"journal mode rollback != wal"},
    "second-instance": {
        "bot-single-instance": r"2 running \(telegram-bot, telegram-bot-2\) != 1",
        "bot-db-locked": r"\d+ lines of telegram-bot's logs match 'database is locked'.* > 0",
    },
    "hand-made-bot": {
        "bot-restart-policy": r"restart policy no != unless-stopped",
        "bot-memory-limit": r"memory limit none \(unlimited\) != 1\.0 GiB",
    },
    "memory-high": {"bot-memory-usage": r"telegram-bot uses 8\d\.\d% of its limit \(.*\) >= 80%"},
    "polling-missing": {"bot-polling": r"no line of telegram-bot's logs matches 'polling'"},
    "env-missing-key": {"bot-env": r"YANDEX_GPT_FOLDER_ID missing \(values not shown\)"},
}


def lab_environment() -> dict[str, str]:
    env = dict(os.environ)
    for line in LAB_ENV.read_text().splitlines():
        name, _, value = line.partition("=")
        if name and not name.startswith("#"):
            env[name.strip()] = value.strip()
    return env


def run_daily(reports: Path, *extra: str, systems: Path = LAB_FILE) -> tuple[int, dict[str, Any], str]:
    """The checklist as a user runs it; returns exit code, records by check id, output."""
    command = [sys.executable, "-m", "pytest", "-m", "daily", f"--systems={systems}"]
    command += [f"--reports-dir={reports}", "-q", "-p", "no:cacheprovider", *extra]
    done = subprocess.run(
        command, cwd=REPO, env=lab_environment(), capture_output=True, text=True, timeout=600
    )
    summary = json.loads((reports / "latest" / "summary.json").read_text())
    records = {record["check_id"]: record for record in summary["checks"]}
    return done.returncode, records, done.stdout + done.stderr


def outcomes(records: dict[str, Any], outcome: str) -> set[str]:
    return {check_id for check_id, record in records.items() if record["outcome"] == outcome}


@pytest.fixture(scope="module")
def healthy_lab() -> Iterator[None]:
    lab.up(SYSTEM)
    lab.heal(SYSTEM)
    yield
    lab.heal(SYSTEM)


def test_healthy_lab_passes_every_daily_check(healthy_lab: None, tmp_path: Path) -> None:
    code, records, output = run_daily(tmp_path)
    assert outcomes(records, "failed") == set(), output[-3000:]
    assert outcomes(records, "skipped") == MONITORING
    for check_id in MONITORING:
        assert "does not declare feature 'monitoring'" in records[check_id]["message"]
    assert code == 0
    assert len(outcomes(records, "passed")) >= 35


def test_every_fault_has_message_expectations() -> None:
    names = {fault.name for fault in lab.faults(SYSTEM)}
    assert names == set(MESSAGES)


@pytest.mark.parametrize("fault", sorted(MESSAGES))
def test_fault_fails_exactly_its_checks(healthy_lab: None, tmp_path: Path, fault: str) -> None:
    expected = lab.find_fault(fault, SYSTEM).expected_failures
    lab.break_fault(SYSTEM, fault)
    try:
        code, records, output = run_daily(tmp_path)
    finally:
        lab.heal(SYSTEM)
    failed = outcomes(records, "failed") | outcomes(records, "error")
    assert failed == set(expected), (
        f"unexpected: {failed - expected}, missing: {expected - failed}\n{output[-3000:]}"
    )
    assert code == 1
    for check_id, pattern in MESSAGES[fault].items():
        message = records[check_id]["message"]
        assert re.search(pattern, message), f"{check_id}: {message!r} !~ {pattern!r}"
        assert records[check_id]["remedy"], check_id


def test_after_heal_everything_passes_again(healthy_lab: None, tmp_path: Path) -> None:
    code, records, output = run_daily(tmp_path)
    assert outcomes(records, "failed") == set(), output[-3000:]
    assert code == 0


def test_paramiko_backend_sees_the_same_green_lab(healthy_lab: None, tmp_path: Path) -> None:
    overlay = tmp_path / "paramiko.yml"
    spec = "paramiko://root@198.18.0.2?ssh_config=/var/lib/runbook-lab/ssh/config"
    overlay.write_text(f"extends: {LAB_FILE}\nhosts:\n  server: {spec}\n")
    code, records, output = run_daily(tmp_path / "reports", systems=overlay)
    assert outcomes(records, "failed") == set(), output[-3000:]
    assert code == 0


def test_dead_host_is_one_failure_within_its_timeout(healthy_lab: None, tmp_path: Path) -> None:
    overlay = tmp_path / "dead.yml"
    # An address of the lab's own range that nothing answers on (the lab fences the range).
    spec = "ssh://root@198.18.0.6?ssh_config=/var/lib/runbook-lab/ssh/config"
    overlay.write_text(f"extends: {LAB_FILE}\nconnect_timeout: 3\nhosts:\n  server: {spec}\n")
    started = time.monotonic()
    code, records, output = run_daily(tmp_path / "reports", systems=overlay)
    elapsed = time.monotonic() - started
    failed = outcomes(records, "failed")
    assert failed == {"reachable-server"}, output[-3000:]
    assert "unreachable" in records["reachable-server"]["message"]
    skipped = outcomes(records, "skipped") - MONITORING
    host_checks = {cid for cid, r in records.items() if r["kind"] not in {"http", "tcp", "hosts"}}
    assert host_checks <= skipped
    assert code == 1
    assert elapsed < 60, f"a dead host took {elapsed:.0f}s"
