"""tox, the design card's way to run the checklist: `tox -e daily` and `tox -e smoke` green on the lab.

tox builds its own environments from PyPI (the package with its dev extra) and passes the
whole environment through (`passenv = *`), so every system's secrets reach the checklist
without a second list of names. Creating those environments downloads and installs for a
minute or two, and the whole lab's checklists must not run beside `make test`'s faults: this
runs on its own, `make tox-check` (the lab up and healthy), and is skipped otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOX = [os.environ["RUNBOOK_TOX"]] if os.environ.get("RUNBOOK_TOX") else [sys.executable, "-m", "tox"]

pytestmark = pytest.mark.skipif(
    os.environ.get("RUNBOOK_TOX_CHECK") != "1",
    reason="make tox-check: builds tox's environments from PyPI and runs the whole lab's checklists",
)


@pytest.mark.parametrize("env", ["daily", "smoke"])
def test_the_tox_env_is_green_on_the_lab(env: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    done = subprocess.run(
        [*TOX, "-e", env, "--", f"--reports-dir={reports}", "--no-history"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    summary = re.findall(r"^=* ?(\d+ passed[^\n]*) in [\d.]+s", output, re.M)
    assert summary and "failed" not in summary[-1] and "error" not in summary[-1], output[-4000:]
    assert (reports / "latest" / "report.html").is_file()
