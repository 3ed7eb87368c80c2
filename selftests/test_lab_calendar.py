"""The calendar runbook against its lab: green when healthy, red with the right message per fault.

Each fault of `python -m lab faults ai-calendar-assistant` is injected, the daily
checklist runs as a user runs it (a pytest subprocess over SSH to the lab server),
and the set of failing checks must be exactly the fault's expected set: every other
check still passes. The first check's message must show the found value and the
threshold. Heal runs after each fault; the next fault's run (and the last test)
would show anything heal left behind as an unexpected failure. The generic tests
come from selftests/lab_harness.py; this module is the calendar's data and its own
two tests of host specs.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import lab_fingerprint as fingerprint
from lab_harness import REPO, LabChecklistTests, outcomes

from lab import addresses
from lab.ssh import ssh_config_path

SYSTEM = "ai-calendar-assistant"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"
MONITORING = {"prometheus-healthy", "grafana-healthy", "loki-ready"}

# fault -> {check id: pattern its message must match}: found value and threshold.
MESSAGES: dict[str, dict[str, str]] = {
    "bot-down": {
        "bot-running": r"telegram-bot is exited",
        "health": r"Failed to connect to localhost port 8000",
    },
    "restart-loop": {
        "bot-running": r"telegram-bot is (restarting|exited)",
        "bot-restarts": r"restarted \d+ times in the last 24h > 0",
        "bot-polling": r"no line of telegram-bot's logs since its start at .* UTC matches 'polling'",
    },
    "oom": {
        "bot-no-crash": r"OOM kill at .* UTC|exit 137 \(killed \(SIGKILL",
        "bot-restarts": r"restarted 1 times in the last 24h > 0 .*exit codes 137",
    },
    "health-unhealthy": {"health-status": r"status 503 != 200"},
    "health-slow": {"health": r"no answer within 5s", "health-fields": r"no answer within 5s"},
    "disk-full": {"disk-root": r"\d+% used > 90% \(.* free of .*\)"},
    "error-burst": {
        "bot-errors": r"\d+ lines? of telegram-bot's logs match .* in the last 24(\.0)?h > 10",
        "bot-yandexgpt-errors": r"\d+ lines? of .* match 'YandexGPT API error' in the last 24h > 0",
    },
    "stale-backup": {"backup-fresh": r"newest backup \d+\.\dh old > 25h"},
    "tiny-backup": {
        "backup-size": r"newest backup \d+ bytes < 1000",
        "backup-integrity": (
            r"lacks radicale_data\.tar\.gz, bot_data\.tar\.gz, \.env\.backup, docker-compose\* \("
        ),
    },
    "corrupt-backup": {"backup-integrity": r"\.tar\.gz\.gpg is corrupt"},
    # The archive is stamped 03:00 forty days ago: before 03:00 UTC it is 39.x days old.
    "retention-broken": {"backup-retention": r"1 backup\(s\) older than 31 days; oldest (39|40)\.\dd"},
    "cron-missing": {
        "backup-cron": r"none runs /root/ai-calendar-assistant/ai-calendar-assistant/backup-calendar\.sh"
    },
    "redis-down": {
        "redis-running": r"calendar-redis is exited",
        "bot-to-redis": r"cannot reach calendar-redis:6379",
        "bot-redis-errors": r"\d+ lines? of .* match 'redis.exceptions.ConnectionError' in the last 24h > 0",
    },
    "redis-exposed": {
        "redis-ports": r"calendar-redis publishes 0\.0\.0\.0:6379->6379/tcp != no published port"
    },
    "radicale-volume-lost": {"radicale-volume": r"nothing is mounted at /data in radicale-calendar"},
    "radicale-refused": {
        "bot-radicale-refused": r"3 lines of telegram-bot's logs match 'radicale.*' in the last 24h > 0"
    },
    "radicale-down": {
        "radicale-running": r"radicale-calendar is exited",
        "bot-to-radicale": r"cannot reach radicale-calendar:5232",
    },
    "prometheus-down": {"prometheus-healthy": r"Failed to connect to localhost port 9090"},
    "loki-down": {"loki-ready": r"Failed to connect to localhost port 3100"},
    "second-instance": {
        "bot-single-instance": r"2 running \(telegram-bot, telegram-bot-2\) != 1",
        "bot-db-locked": r"\d+ lines? of telegram-bot's logs match 'database is locked'.* > 0",
    },
    "hand-made-bot": {"bot-memory-limit": r"memory limit none \(unlimited\) != 1\.0 GiB"},
    "memory-high": {"bot-memory-usage": r"telegram-bot uses 8\d\.\d% of its limit \(.*\) >= 80%"},
    "polling-missing": {
        "bot-polling": r"no line of telegram-bot's logs since its start at .* UTC matches 'polling'"
    },
    "env-missing-key": {"bot-env-yandexgpt": r"YANDEX_GPT_FOLDER_ID missing \(values not shown\)"},
}


class TestCalendarLab(LabChecklistTests):
    system = SYSTEM
    lab_file = LAB_FILE
    messages = MESSAGES
    # The runbook's markers stand: crashes, limits and troubleshooting symptoms are incident checks.
    markers = "daily or smoke or incident"
    min_passed = 48

    def fingerprint(self) -> dict[str, str]:
        from lab.calendar import system as calendar

        docker_url = calendar.HOST.dockerd.url
        facts = fingerprint.files(calendar.HOST.root, skip=["data/calendar.db*"])  # by its tables below
        facts |= fingerprint.files(calendar.PATHS.crontab)
        facts |= fingerprint.containers(docker_url)
        # The bot writes a heartbeat every 8 s by itself: everything else must stay.
        facts |= fingerprint.sqlite_tables(calendar.PATHS.db, skip_tables={"heartbeat", "analytics"})
        facts |= fingerprint.redis_keys(docker_url, calendar.REDIS)
        return facts

    def test_an_operator_restart_is_not_a_restart_loop(self, healthy_lab: None, tmp_path: Path) -> None:
        """The runbook's own remedy (`docker-compose restart redis`) must not turn anything red."""
        from lab.calendar import system as calendar

        docker = ["docker", "-H", calendar.HOST.dockerd.url]
        subprocess.run([*docker, "restart", "-t", "2", calendar.REDIS], check=True, capture_output=True)
        subprocess.run([*docker, "stop", "-t", "2", calendar.RADICALE], check=True, capture_output=True)
        subprocess.run([*docker, "start", calendar.RADICALE], check=True, capture_output=True)
        time.sleep(2)
        code, records, output = self.run_daily(tmp_path)
        assert outcomes(records, "failed") == set(), output[-3000:]
        assert code == 0

    def test_a_disk_filled_by_hand_is_red_and_heal_empties_it(
        self, healthy_lab: None, tmp_path: Path
    ) -> None:
        """`dd` onto the server's "/" by hand, not the lab's fault: disk-root is red alone, and
        `lab heal` (make test's first step) empties the disk (it left the file there, red ever after)."""
        from lab import api as lab
        from lab.calendar import system as calendar

        big = calendar.HOST.disk / "by-hand.bin"
        try:
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={big}", "bs=1M", "count=60"], check=True, capture_output=True
            )
            _, records, output = self.run_daily(tmp_path / "full")
            assert outcomes(records, "failed") == {"disk-root"}, output[-3000:]
        finally:
            lab.heal(SYSTEM)
        assert not big.exists()
        code, records, output = self.run_daily(tmp_path / "healed")
        assert outcomes(records, "failed") == set() and code == 0, output[-3000:]

    def test_paramiko_refuses_an_unknown_host_key(self, healthy_lab: None, tmp_path: Path) -> None:
        """Without the lab's known_hosts the host key is unknown: refused, unless turned off (and said)."""
        key = ssh_config_path().parent / "id_ed25519"
        for check, spec in (
            ("refused", f"paramiko://root@198.18.0.2?ssh_identity_file={key}"),
            ("off", f"paramiko://root@198.18.0.2?ssh_identity_file={key}&host_key_check=off"),
        ):
            overlay = tmp_path / f"{check}.yml"
            overlay.write_text(f"extends: {LAB_FILE}\nhosts:\n  server: '{spec}'\n")
            _, records, output = self.run_daily(tmp_path / check, "-v", "-k", "reachable", systems=overlay)
            reachable = records["reachable-server"]
            if check == "refused":
                assert reachable["outcome"] == "failed", output[-3000:]
                assert "not found in known_hosts" in reachable["message"]
            else:
                assert reachable["outcome"] == "passed", output[-3000:]
                assert "(host key NOT verified)" in output
                report = (tmp_path / check / "latest" / "report.html").read_text(encoding="utf-8")
                assert "(host key NOT verified)" in report

    def test_paramiko_backend_sees_the_same_green_lab(self, healthy_lab: None, tmp_path: Path) -> None:
        overlay = tmp_path / "paramiko.yml"
        spec = f"paramiko://root@198.18.0.2?ssh_config={ssh_config_path()}"
        overlay.write_text(f"extends: {LAB_FILE}\nhosts:\n  server: {spec}\n")
        code, records, output = self.run_daily(tmp_path / "reports", systems=overlay)
        assert outcomes(records, "failed") == set(), output[-3000:]
        assert code == 0

    def test_dead_host_is_one_failure_within_its_timeout(self, healthy_lab: None, tmp_path: Path) -> None:
        overlay = tmp_path / "dead.yml"
        # A lab address nothing answers on: the calendar has no second host (the lab fences the range).
        dead = addresses.host_link(SYSTEM, 1).host
        spec = f"ssh://root@{dead}?ssh_config={ssh_config_path()}"
        overlay.write_text(f"extends: {LAB_FILE}\nconnect_timeout: 3\nhosts:\n  server: {spec}\n")
        started = time.monotonic()
        code, records, output = self.run_daily(tmp_path / "reports", systems=overlay)
        elapsed = time.monotonic() - started
        failed = outcomes(records, "failed")
        assert failed == {"reachable-server"}, output[-3000:]
        assert "unreachable" in records["reachable-server"]["message"]
        skipped = outcomes(records, "skipped") - MONITORING
        remote = {"http", "tcp", "hosts"}
        host_checks = {check_id for check_id, record in records.items() if record["kind"] not in remote}
        assert host_checks <= skipped
        assert code == 1
        assert elapsed < 60, f"a dead host took {elapsed:.0f}s"
