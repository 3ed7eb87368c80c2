"""A check whose own command finds its host gone is red, whether it ran ahead or in its turn.

The checks run ahead (runbook.run.prefetch) see a host go down first; in their turn the gate skips
the host's checks pointing at its reachability check. The check that found the host down must not
be among them: it reported green-looking runs ("14 passed, 9 skipped", exit 0) when a file stream
failed on a testinfra transport. And a transport that merely cannot stream is not a host down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Loaded with -p: `lost://` runs commands like local:// but its file streams fail as a dropped
# connection does; local:// goes through testinfra's own backend (which cannot stream).
PLUGIN = """
import contextlib
from runbook.host.transports import FALLBACK, TRANSPORTS
from runbook.host.transports.base import TransportError
from runbook.host.transports.process import LocalTransport


class LostOnStream(LocalTransport):
    def stream(self, line, *, timeout):
        raise TransportError("Connection reset by peer")


TRANSPORTS["lost"] = "lost_transport:LostOnStream"
TRANSPORTS["local"] = FALLBACK
"""


def description(tmp_path: Path, spec: str) -> Path:
    backups = tmp_path / "backups"
    backups.mkdir(exist_ok=True)
    (tmp_path / "runbook.md").write_text("# r\n")
    with tarfile.open(backups / "b1.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "runbook.md", arcname="runbook.md")
    common = {"severity": "P2", "section": "1.", "remedy": "fix"}
    text = {
        "system": "lost",
        "runbook": "runbook.md",
        "hosts": {"server": spec},
        "checks": {
            "backups": [
                {**common, "id": "backup-integrity", "title": "newest backup lists",
                 "directory": str(backups), "pattern": "*.tar.gz", "integrity": True},
            ],
            "commands": [
                {**common, "id": f"after-{n}", "title": "a command", "run": "sleep 0.2; true"}
                for n in range(3)
            ],
        },
    }  # fmt: skip
    path = tmp_path / "lost.yml"
    path.write_text(json.dumps(text))
    return path


def run(tmp_path: Path, spec: str, *options: str) -> tuple[int, dict[str, tuple[str, str]]]:
    (tmp_path / "lost_transport.py").write_text(PLUGIN)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")])
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "lost_transport", "-q",
               f"--systems={description(tmp_path, spec)}", f"--reports-dir={reports}", *options,
               "tests_health", "tests_backup"]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    summary = json.loads((reports / "latest" / "summary.json").read_text())
    return done.returncode, {
        check["check_id"]: (check["outcome"], check["message"]) for check in summary["checks"]
    }


@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ("--parallel-hosts", "0")], ids=["ahead", "one-by-one"])
def test_the_check_that_found_its_host_gone_is_red(tmp_path: Path, options: tuple[str, ...]) -> None:
    code, found = run(tmp_path, "lost://", *options)
    outcome, message = found["backup-integrity"]
    assert outcome == "failed", found
    assert "unreachable: Connection reset by peer" in message, message
    assert code == 1, found


@pytest.mark.slow
def test_a_transport_that_cannot_stream_fails_that_check_only(tmp_path: Path) -> None:
    code, found = run(tmp_path, "local://")
    assert found["backup-integrity"][0] == "failed", found
    assert "streaming a file is not supported over local:// yet" in found["backup-integrity"][1]
    assert {check: outcome for check, (outcome, _) in found.items() if check.startswith("after-")} == {
        "after-0": "passed",
        "after-1": "passed",
        "after-2": "passed",
    }, found
    assert code == 1, found
