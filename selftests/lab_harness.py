"""The generic half of a lab system's tests: green when healthy, each fault exactly its checks.

A system's test module subclasses `LabChecklistTests` with its data: the system name, its
`systems/lab/` file, the checks skipped on a healthy lab (and why), and MESSAGES, the fault
table's expected messages. The checklist runs as a user runs it, a pytest subprocess over SSH
to the lab, and each fault's set of failing checks must be exactly its expected set.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from lab_fingerprint import differences

from lab import api as lab
from lab.core import lab_dir

REPO = Path(__file__).resolve().parents[1]


def lab_environment() -> dict[str, str]:
    """This process's environment plus the lab's secrets (lab.env), as a vault would give them."""
    env = dict(os.environ)
    for line in (lab_dir() / "lab.env").read_text().splitlines():
        name, _, value = line.partition("=")
        if name and not name.startswith("#"):
            env[name.strip()] = value.strip()
    return env


def run_checklist(
    reports: Path, *extra: str, systems: Path, marker: str = "daily"
) -> tuple[int, dict[str, Any], str]:
    """The checklist as a user runs it; returns exit code, records by check id, output."""
    # The lab is where writing checks may run (a production overlay may not turn them on).
    command = [sys.executable, "-m", "pytest", "-m", marker, f"--systems={systems}", "--allow-writes"]
    command += [f"--reports-dir={reports}", "-q", "-p", "no:cacheprovider", *extra]
    done = subprocess.run(
        command, cwd=REPO, env=lab_environment(), capture_output=True, text=True, timeout=600
    )
    summary_file = reports / "latest" / "summary.json"
    output = done.stdout + done.stderr
    assert summary_file.exists(), f"the checklist wrote no summary, exit {done.returncode}:\n{output[-3000:]}"
    summary = json.loads(summary_file.read_text())
    records = {record["check_id"]: record for record in summary["checks"]}
    return done.returncode, records, output


def outcomes(records: dict[str, Any], outcome: str) -> set[str]:
    return {check_id for check_id, record in records.items() if record["outcome"] == outcome}


class LabChecklistTests:
    """Subclass as `Test<System>Lab` and fill in the class attributes; the tests come from here."""

    system: ClassVar[str]
    lab_file: ClassVar[Path]
    # fault -> {check id: pattern its message must match}: found value and threshold.
    messages: ClassVar[dict[str, dict[str, str]]]
    # checks a healthy lab skips -> text their message must contain (the reason)
    skipped_when_healthy: ClassVar[dict[str, str]] = {}
    # fault -> extra options of its checklist run (a writing check's fault needs --allow-writes)
    fault_options: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Faults whose `may_fail` checks are left out of their run: red or green by the moment, they
    # prove nothing there, and a starved service makes each of them wait for its deadline.
    unrun_may_fail: ClassVar[frozenset[str]] = frozenset()
    min_passed: ClassVar[int] = 1
    # The marker expression of the healthy and fault runs: the production file's markers stand,
    # so a system whose faults show only in smoke or incident checks runs those too.
    markers: ClassVar[str] = "daily"

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "fault" in metafunc.fixturenames:
            metafunc.parametrize("fault", sorted(self.messages))

    def run_daily(
        self, reports: Path, *extra: str, systems: Path | None = None
    ) -> tuple[int, dict[str, Any], str]:
        """The daily checklist against this system's lab file (or an overlay of it)."""
        return run_checklist(reports, *extra, systems=systems or self.lab_file, marker=self.markers)

    @pytest.fixture(scope="class")
    @classmethod
    def healthy_lab(cls) -> Iterator[None]:
        lab.up(cls.system)
        lab.heal(cls.system)
        yield
        lab.heal(cls.system)

    def test_healthy_lab_passes_every_daily_check(self, healthy_lab: None, tmp_path: Path) -> None:
        code, records, output = self.run_daily(tmp_path)
        assert outcomes(records, "failed") == set(), output[-3000:]
        assert outcomes(records, "skipped") == set(self.skipped_when_healthy)
        for check_id, reason in self.skipped_when_healthy.items():
            assert reason in records[check_id]["message"]
        assert code == 0
        assert len(outcomes(records, "passed")) >= self.min_passed

    def fingerprint(self) -> dict[str, str]:
        """What a checklist run must leave exactly as it found it: files, containers, databases.

        Every system's lab tests say it (see selftests/lab_fingerprint.py); leave out only what
        the system changes by itself while it runs.
        """
        raise NotImplementedError(f"{self.system}: every lab system's tests give a fingerprint()")

    def test_daily_and_incident_runs_change_nothing(self, healthy_lab: None, tmp_path: Path) -> None:
        """Read-only, proven: a full daily and incident run leaves the system as it was."""
        before = self.fingerprint()
        assert before, "an empty fingerprint proves nothing"
        for marker in ("daily", "incident"):
            code, _, output = run_checklist(tmp_path / marker, systems=self.lab_file, marker=marker)
            assert code == 0, output[-3000:]
        assert differences(before, self.fingerprint()) == []

    def test_every_fault_has_message_expectations(self) -> None:
        names = {fault.name for fault in lab.faults(self.system)}
        assert names == set(self.messages)

    def test_fault_fails_exactly_its_checks(self, healthy_lab: None, tmp_path: Path, fault: str) -> None:
        found_fault = lab.find_fault(fault, self.system)
        expected, may_fail = found_fault.expected_failures, found_fault.may_fail
        unrun = self._deselect(may_fail) if fault in self.unrun_may_fail else ()
        lab.break_fault(self.system, fault)
        try:
            code, records, output = self.run_daily(tmp_path, *self.fault_options.get(fault, ()), *unrun)
        finally:
            lab.heal(self.system)
        failed = outcomes(records, "failed") | outcomes(records, "error")
        # Exactly its checks; those the fault turns red only at some moments may be either.
        assert expected <= failed <= expected | may_fail, (
            f"unexpected: {failed - expected - may_fail}, missing: {expected - failed}\n{output[-3000:]}"
        )
        assert code == 1
        for check_id, pattern in self.messages[fault].items():
            if check_id in may_fail and check_id not in failed:
                continue  # red only at some moments (may_fail): its message is checked when red
            message = records[check_id]["message"]
            assert re.search(pattern, message), f"{check_id}: {message!r} !~ {pattern!r}"
            assert records[check_id]["remedy"], check_id

    def _deselect(self, check_ids: frozenset[str]) -> tuple[str, ...]:
        """`-k` leaving these checks out: `system:id]` matches the one test id and no longer one."""
        if not check_ids:
            return ()
        names = " or ".join(f"{self.system}:{check_id}]" for check_id in sorted(check_ids))
        return ("-k", f"not ({names})")

    def test_after_heal_everything_passes_again(self, healthy_lab: None, tmp_path: Path) -> None:
        code, records, output = self.run_daily(tmp_path)
        assert outcomes(records, "failed") == set(), output[-3000:]
        assert code == 0
