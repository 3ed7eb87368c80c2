"""A fleet of lab hosts (lab.fleet, 6 bare sshd hosts): checked at once, on workers, in shards.

The same description runs one check per test (`--parallel-hosts 0`), with checks run
ahead (the default), under xdist by host, and as 3 shards merged by `runbook.readers.merge`: every
way must give the same records (outcome, severity, message) and JUnit failure messages
that still start with severity and section. One host is down (its checks skip with a
pointer) and one check fails on every host. Needs root (network namespaces).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import fleet

ROOT = Path(__file__).resolve().parents[1]
HOSTS = 6
DOWN = "fleet-down"  # a fleet slot never brought up: refused at once by the lab's route

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the fleet needs root (network namespaces)")


@pytest.fixture(scope="module")
def members() -> Iterator[list[fleet.FleetHost]]:
    hosts = fleet.up(HOSTS)
    yield hosts
    fleet.down()


def checks_for(name: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "commands": [
            {"id": f"kernel-{name}", "title": "kernel is Linux", "run": "uname -s", "expect_stdout": "Linux"},
            {"id": f"wrong-{name}", "title": "a check that fails", "run": "echo no", "expect_stdout": "yes"},
        ],
        "files": [{"id": f"passwd-{name}", "title": "passwd is a file", "path": "/etc/passwd"}],
    }


def write_description(folder: Path, members: list[fleet.FleetHost]) -> Path:
    config = fleet.ssh_config_path()
    down = fleet.fleet_host(fleet.MAX_HOSTS - 1)
    specs = {host.label: f"ssh+persist://root@{host.addr}?ssh_config={config}" for host in members}
    specs[DOWN] = f"ssh+persist://root@{down.addr}?ssh_config={config}"
    checks: dict[str, list[dict[str, Any]]] = {}
    for name in specs:
        for kind, listed in checks_for(name).items():
            common = {"severity": "P2", "section": "3.1 Fleet", "remedy": "look", "host": name}
            checks.setdefault(kind, []).extend({**common, **check} for check in listed)
    (folder / "runbook.md").write_text("# fleet\n")
    description = {
        "system": "fleet",
        "runbook": "runbook.md",
        "hosts": specs,
        "connect_timeout": 5,
        "checks": checks,
    }
    (folder / "fleet.yml").write_text(yaml.safe_dump(description, sort_keys=False))
    return folder


def run(folder: Path, reports: Path, *options: str) -> Path:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        f"--systems={folder}",
        f"--reports-dir={reports}",
        *options,
        "tests_health",
        "tests_config",
        "tests_backup",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    (run_folder,) = [path for path in reports.iterdir() if path.is_dir() and not path.is_symlink()]
    return run_folder


def records(run_folder: Path) -> dict[str, tuple[str, str, str]]:
    document = json.loads((run_folder / "summary.json").read_text())
    checks = document["checks"]
    return {check["id"]: (check["outcome"], check["severity"], check["message"]) for check in checks}


def junit_failures(run_folder: Path) -> dict[str, str]:
    root = ET.parse(run_folder / "junit.xml").getroot()
    return {
        case.get("name", ""): failure.get("message", "")
        for case in root.iter("testcase")
        for failure in case.iter("failure")
    }


@pytest.fixture(scope="module")
def sequential(members: list[fleet.FleetHost], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_description(tmp_path_factory.mktemp("fleet-description"), members)
    return run(folder, tmp_path_factory.mktemp("sequential"), "--parallel-hosts", "0")


def test_sequential_run_has_the_expected_outcomes(sequential: Path, members: list[fleet.FleetHost]) -> None:
    found = records(sequential)
    assert len(found) == (HOSTS + 1) * 4
    for host in members:
        assert found[f"fleet:kernel-{host.label}"][0] == "passed"
        assert found[f"fleet:wrong-{host.label}"][:2] == ("failed", "P2")
    assert found[f"fleet:reachable-{DOWN}"][0] == "failed"
    assert found[f"fleet:kernel-{DOWN}"][0] == "skipped"
    assert f"see fleet:reachable-{DOWN}" in found[f"fleet:kernel-{DOWN}"][2]


@pytest.mark.parametrize(
    "options",
    [(), ("--parallel-hosts", "2"), ("-n", "2", "--dist-hosts")],
    ids=["ahead", "ahead-2-hosts", "xdist-by-host"],
)
def test_concurrent_runs_report_the_same(
    options: tuple[str, ...], sequential: Path, tmp_path: Path, members: list[fleet.FleetHost]
) -> None:
    folder = sequential_description(tmp_path, members)
    concurrent = run(folder, tmp_path / "reports", *options)
    assert records(concurrent) == records(sequential)
    messages = junit_failures(concurrent)
    assert messages == junit_failures(sequential)
    assert all(message.startswith("[P") and "§" in message for message in messages.values())


def sequential_description(tmp_path: Path, members: list[fleet.FleetHost]) -> Path:
    folder = tmp_path / "description"
    folder.mkdir()
    return write_description(folder, members)


def test_three_shards_merge_into_the_whole_run(
    sequential: Path, tmp_path: Path, members: list[fleet.FleetHost]
) -> None:
    folder = sequential_description(tmp_path, members)
    shards = [run(folder, tmp_path / f"shard-{index}", "--shard", f"{index}/3") for index in (1, 2, 3)]
    sizes = [len(records(shard)) for shard in shards]
    assert all(size > 0 for size in sizes) and sum(sizes) == len(records(sequential))
    merged = tmp_path / "merged"
    done = subprocess.run(
        [sys.executable, "-m", "runbook.merge", str(merged), *map(str, shards)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr  # the failing checks fail the merged run too
    assert records(merged) == records(sequential)
    assert junit_failures(merged) == junit_failures(sequential)
    summary = json.loads((merged / "summary.json").read_text())["run"]
    assert summary["counts"]["failed"] == HOSTS + 1
    assert len(summary["shards"]) == 3
    page = (merged / "report.html").read_text()
    assert f"reachable-{DOWN}" in page and "[P2]" in page
