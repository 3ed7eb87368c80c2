"""A run survives its host failing in its middle: dockerd stopped while the calendar's checklist runs.

The daily checklist is started against the healthy lab; once it holds its SSH connection to
the server, the server's dockerd is stopped (its containers with it), as an upgrade or an OOM
of the daemon would. The run must end on its own with every report written, exit code 1, each
check with an outcome and a message (no traceback); then the lab comes back up and heals.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lab_harness import REPO, lab_environment

from lab import api as lab
from lab.calendar.system import HOST

SYSTEM = "ai-calendar-assistant"
LAB_FILE = REPO / "systems" / "lab" / f"{SYSTEM}.yml"


def _connected(address: str) -> bool:
    said = subprocess.run(
        ["ss", "-Htn", "state", "established", "dst", f"{address}:22"], capture_output=True, text=True
    )
    return bool(said.stdout.strip())


def test_dockerd_stopped_in_the_middle_of_a_run(tmp_path: Path) -> None:
    lab.up(SYSTEM)
    lab.heal(SYSTEM)
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", "-m", "daily", f"--systems={LAB_FILE}", "--allow-writes"]
    command += [f"--reports-dir={reports}", "-q", "-p", "no:cacheprovider"]
    process = subprocess.Popen(
        command, cwd=REPO, env=lab_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _connected(HOST.addr):
            time.sleep(0.05)
        HOST.dockerd.stop()
        output = process.communicate(timeout=300)[0].decode()
    finally:
        process.kill()
        lab.up(SYSTEM)
        lab.heal(SYSTEM)
    assert process.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-3000:]
    run_folder = reports / "latest"
    for name in ("summary.json", "report.html", "junit.xml"):
        assert (run_folder / name).is_file(), name
    checks = json.loads((run_folder / "summary.json").read_text(encoding="utf-8"))["checks"]
    assert all(check["outcome"] in {"passed", "failed", "skipped"} and check["message"] for check in checks)
    red = {check["check_id"]: check["message"] for check in checks if check["outcome"] == "failed"}
    assert "bot-running" in red, red  # a container check after the daemon went away
    assert all(message.startswith("[P") for message in red.values()), red
