"""The Magic Master runbook against its lab: a real systemd host, green when healthy, red per fault.

Each fault of `python -m lab faults magic-master` is made on the host with its own tools
(systemctl, a changed .env and a restart, files moved, chmod-ed or overwritten, crontab), the
daily checklist runs as a user runs it (a pytest subprocess over SSH), and the set of failing
checks must be exactly the fault's expected set. The generic tests come from
selftests/lab_harness.py; this module is Magic Master's data, its fingerprint (taken on the host
over SSH: files, unit state, crontab), the download opt-in of the admin backup API, and failures
made by hand, without `lab break`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lab_harness import REPO, LabChecklistTests, lab_environment, outcomes, run_checklist

SYSTEM = "magic-master"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"
REFUSED = r"GET http://198\.18\.3\.2:8000/api/health failed: ConnectError: .*Connection refused"
DOWN = {
    "health-status": REFUSED,
    "status-page": r"GET http://198\.18\.3\.2:8000/status failed: ConnectError",
    "metrics-json": r"GET http://198\.18\.3\.2:8000/api/metrics failed: ConnectError",
    "cors-preflight": r"OPTIONS http://198\.18\.3\.2:8000/api/health failed: ConnectError",
    "cors-origins": r"magic-master is not running",
}
# Checks that read the running unit (its health answer, its environment): red while it is down.
UNIT_DOWN = {
    "health-status", "health-database", "health-disk", "health-ffmpeg", "health-fields", "status-page",
    "metrics-json", "cors-preflight", "cors-origins", "yookassa-whitelist", "telegram-notify",
    "admin-backup-api",
}  # fmt: skip
DB = "/opt/magic-master/backend/magic_master.db"
TEMP_DIR = "/opt/magic-master/tmp"
CASED_ERROR = r"/\\bERROR\\b/ \(case-sensitive\)"  # the level, not every "error"
DEGRADED = r'JSON status = "degraded" != "ok" .*; status=degraded components\.database\.status='

# fault -> {check id: pattern its message must match}: found value and threshold.
MESSAGES: dict[str, dict[str, str]] = {
    "service-stopped": {**DOWN, "unit-active": r"magic-master\.service is inactive \(dead\)"},
    "crash-loop": {
        **DOWN,
        "unit-active": r"activating \(auto-restart\), result exit-code \(exit status 2\)",
        "journal-errors": r"\d+ entries of magic-master with " + CASED_ERROR + r" in the last 1h > 5",
    },
    "error-burst": {
        "journal-errors": r"(8|9|\d\d) entries of magic-master with " + CASED_ERROR + r" in the last 1h > 5"
    },
    "database-missing": {
        "health-status": DEGRADED + "unavailable",
        "health-database": r'components\.database\.status = "unavailable" != "ok"',
        "db-integrity": r"/opt/magic-master/backend/magic_master\.db does not exist",
        "db-readable": r"/opt/magic-master/backend/magic_master\.db does not exist",
    },
    "database-unreadable": {
        "health-database": r'components\.database\.status = "error" != "ok"',
        "db-readable": r"magic_master\.db \(root:root 600\) is not readable by magic",
    },
    "database-corrupt": {
        "db-integrity": r"magic_master\.db is damaged: .*btreeInitPage\(\) returns error code 11"
    },
    "temp-dir-low": {
        "health-status": DEGRADED + r"ok components\.disk\.status=low components\.disk\.free_mb=1\d\d",
        "health-disk": r"components\.disk\.status = \"low\" does not match '\^\(\?!low\$\)'; "
        r"components\.disk\.free_mb = 1\d\d < 200",
        "temp-space": r"1\d\d MB free on /opt/magic-master/tmp < 200 MB",
    },
    "ffmpeg-missing": {
        "health-ffmpeg": r'components\.ffmpeg = "missing" != "ok"',
        "ffmpeg-on-path": r"ffmpeg not found on /usr/local/bin:/usr/bin:/bin \(the unit's Environment=PATH\)",
    },
    "cors-wildcard": {
        "cors-preflight": r"header Access-Control-Allow-Origin: '\*' matches .* \(status 200, OPTIONS ",
        "cors-origins": r"magic-master or /opt/magic-master/\.env: MAGIC_MASTER_CORS_ORIGINS is placeholder",
    },
    "cors-unset": {
        "cors-preflight": r"header Access-Control-Allow-Origin: '\*' matches",
        "cors-origins": r"MAGIC_MASTER_CORS_ORIGINS missing \(values not shown\)",
    },
    "whitelist-empty": {"yookassa-whitelist": r"MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST is empty"},
    "whitelist-invalid": {
        "yookassa-whitelist": r"WHITELIST is invalid \(2 of 3 entries not an IP address or network\)"
    },
    "backup-stale": {
        "backup-fresh": r"newest backup 30\.\dh old > 25h \(/opt/magic-master/backups/backup_\d{8}_\d{4}"
    },
    "backup-not-database": {
        "backup-valid": r"backup_\d{8}_\d{4}z\.sqlite3 is damaged: .*file is not a database"
    },
    "telegram-placeholder": {
        "telegram-notify": r"/opt/magic-master/\.env: MAGIC_MASTER_TELEGRAM_BOT_TOKEN is placeholder"
    },
    "cron-missing": {"backup-cron": r"no cron entry runs deploy/backup_db\.sh \(crontab has 0 entries"},
}

# On the host: what a checklist run must leave exactly as it was.
FINGERPRINT = (
    "find /opt/magic-master /etc/systemd/system /var/spool/cron/crontabs -xdev -type f "
    "-exec sha256sum {} + | sort; "
    "find /opt/magic-master -xdev -printf '%p %y %m %u:%g %s %T@\\n' | sort; "
    "systemctl show -p InvocationID -p NRestarts -p ActiveState -p SubState -p UnitFileState "
    "-p ExecMainPID magic-master.service"
)


def ssh(command: str) -> str:
    from lab.magic_master import system as mm

    return mm.sh(command)


class TestMagicMasterLab(LabChecklistTests):
    system = SYSTEM
    lab_file = LAB_FILE
    messages = MESSAGES
    # The harness runs with --allow-writes: the admin backup API's download runs too.
    min_passed = 23

    def fingerprint(self) -> dict[str, str]:
        # temp_dir's own mtime is the app's bookkeeping: the admin backup download (allowed with
        # --allow-writes) copies the database through a scratch folder there and removes it.
        lines = [line for line in ssh(FINGERPRINT).splitlines() if not line.startswith(f"{TEMP_DIR} d ")]
        return {f"host:{number}": line for number, line in enumerate(lines)}

    def test_the_backup_api_downloads_a_database_only_when_allowed(
        self, healthy_lab: None, tmp_path: Path
    ) -> None:
        code, records, output = self.run_daily(tmp_path / "allowed", "--allow-downloads")
        assert code == 0, output[-3000:]
        assert records["admin-backup-api"]["outcome"] == "passed"
        environment = {**lab_environment(), "MM_ADMIN_JWT": "not.a.token"}
        command = [sys.executable, "-m", "pytest", "-m", "daily", f"--systems={LAB_FILE}", "-q"]
        command += ["-p", "no:cacheprovider", f"--reports-dir={tmp_path / 'refused'}", "--allow-downloads"]
        command += ["-k", "admin-backup-api"]
        done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stdout[-2000:]
        assert "status 401 != 200" in done.stdout
        assert "not.a.token" not in done.stdout

    @pytest.mark.parametrize(
        ("by_hand", "fails"),
        [
            ("systemctl stop magic-master", {"unit-active", *UNIT_DOWN}),
            (f"chmod 000 {DB} && chown root {DB}", {"health-status", "health-database", "db-readable",
                                                     "admin-backup-api"}),
            ("crontab -r", {"backup-cron"}),
            # heal lays a database that lost a table anew (it waited for a healthy /api/health forever)
            (f"sqlite3 {DB} 'DROP TABLE users'", {"health-status", "health-database"}),
        ],
    )  # fmt: skip
    def test_failures_made_by_hand_turn_the_same_checks_red(
        self, healthy_lab: None, tmp_path: Path, by_hand: str, fails: set[str]
    ) -> None:
        """Plain systemctl, chmod and crontab on the host, without `lab break`: the checks see the symptom."""
        from lab import api as lab

        ssh(by_hand)
        try:
            code, records, output = run_checklist(tmp_path, systems=LAB_FILE)
        finally:
            lab.heal(SYSTEM)
        assert outcomes(records, "failed") | outcomes(records, "error") == fails, output[-3000:]
        assert code == 1

    def test_env_files_can_read_what_the_running_unit_has(self, healthy_lab: None) -> None:
        """`unit:` reads the main process's environment (EnvironmentFile= and Environment= applied)."""
        from lab.magic_master import system as mm
        from lab.ssh import ssh_config_path
        from runbook.checks import env_files
        from runbook.checks.env_files import EnvFileCheck
        from runbook.errors import CheckFailed
        from runbook.host.target import Target

        def check(*required: str) -> EnvFileCheck:
            common = {"title": "settings", "severity": "P2", "section": "5.", "remedy": "set them"}
            return EnvFileCheck(**common, id="unit-env", unit=mm.UNIT, required=list(required))

        spec = f"ssh+persist://root@{mm.HOST.addr}?ssh_config={ssh_config_path()}"
        target = Target("server", spec, command_timeout=20, connect_timeout=10)
        try:
            env_files.verify(check("MAGIC_MASTER_CORS_ORIGINS", "PATH", "MAGIC_MASTER_JWT_SECRET"), target)
            with pytest.raises(CheckFailed) as info:
                env_files.verify(check("MAGIC_MASTER_CORS_ORIGINS", "MAGIC_MASTER_SENTRY_DSN"), target)
            assert info.value.found == (
                "the environment of magic-master: MAGIC_MASTER_SENTRY_DSN missing (values not shown)"
            )
            ssh(f"systemctl stop {mm.UNIT}")
            with pytest.raises(CheckFailed, match="magic-master is not running"):
                env_files.verify(check("PATH"), target)
        finally:
            target.connection.close()
            ssh(f"systemctl start {mm.UNIT}")
