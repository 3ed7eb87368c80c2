"""`--shard K/N` splits hosts as a partition, the same in every job; `runbook.merge` joins the reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runbook.describe.loader import load_systems
from runbook.readers import merge
from runbook.run.shard import parse_shard, shard_of_hosts

ROOT = Path(__file__).resolve().parents[1]

DESCRIPTION = """
system: {name}
runbook: runbook.md
hosts:
{hosts}
checks:
  commands:
{checks}
"""


def write_system(folder: Path, name: str, hosts: int) -> None:
    names = [f"h{index}" for index in range(hosts)]
    host_lines = "\n".join(f"  {host}: ssh://root@{name}-{host}.example.com" for host in names)
    check_lines = "\n".join(
        f"    - {{id: up-{host}, title: host answers, run: 'true', host: {host}, severity: P3, "
        f"section: '1', remedy: look}}"
        for host in names
    )
    (folder / "runbook.md").write_text("# r\n")
    (folder / f"{name}.yml").write_text(DESCRIPTION.format(name=name, hosts=host_lines, checks=check_lines))


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(pytest.UsageError, match="K/N"):
        parse_shard(text)


def test_hosts_split_into_balanced_disjoint_shards_whatever_the_order(tmp_path: Path) -> None:
    write_system(tmp_path, "alpha", 20)
    write_system(tmp_path, "beta", 10)
    systems = load_systems(tmp_path, None)
    split = shard_of_hosts(systems, 3)
    assert len(split) == 30
    sizes = sorted(list(split.values()).count(shard) for shard in (1, 2, 3))
    assert sizes == [10, 10, 10]
    assert shard_of_hosts(list(reversed(systems)), 3) == split


def summary(checks: list[tuple[str, str]], started: str, status: int) -> dict[str, object]:
    return {
        "format": merge.FORMAT,
        "run": {
            "started": started,
            "finished": started,
            "duration": 1.0,
            "systems": ["s"],
            "exit_status": status,
            "counts": {},
        },
        "checks": [{"id": i, "outcome": outcome, "severity": "P2", "message": "m"} for i, outcome in checks],
    }


def write_shard(folder: Path, checks: list[tuple[str, str]], started: str, status: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary(checks, started, status)))
    failures = sum(outcome == "failed" for _, outcome in checks)
    failure = '<failure message="[P2] §1: bad"/>'
    cases = "".join(
        f'<testcase name="{i}">{failure if outcome == "failed" else ""}</testcase>' for i, outcome in checks
    )
    (folder / "junit.xml").write_text(
        f'<testsuites><testsuite name="pytest" tests="{len(checks)}" failures="{failures}" errors="0" '
        f'skipped="0">{cases}</testsuite></testsuites>'
    )
    return folder


def test_merge_joins_summaries_junit_and_html(tmp_path: Path) -> None:
    one = write_shard(tmp_path / "1", [("s:a", "passed"), ("s:b", "failed")], "2026-01-01T00:00:05Z", 1)
    two = write_shard(tmp_path / "2", [("s:c", "passed")], "2026-01-01T00:00:01Z", 0)
    assert merge.main([str(tmp_path / "out"), str(one), str(two)]) == 1
    document = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [check["id"] for check in document["checks"]] == ["s:a", "s:b", "s:c"]
    assert document["run"]["counts"]["passed"] == 2 and document["run"]["counts"]["failed"] == 1
    assert document["run"]["failures_by_severity"]["P2"] == 1
    assert document["run"]["started"] == "2026-01-01T00:00:01Z" and document["run"]["exit_status"] == 1
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert root.get("tests") == "3" and root.get("failures") == "1"
    assert [failure.get("message") for failure in root.iter("failure")] == ["[P2] §1: bad"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.index("s:b") < page.index("s:a")  # failures first


def test_merge_refuses_overlapping_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = write_shard(tmp_path / "1", [("s:a", "passed")], "2026-01-01T00:00:00Z", 0)
    two = write_shard(tmp_path / "2", [("s:a", "passed")], "2026-01-01T00:00:00Z", 0)
    assert merge.main([str(tmp_path / "out"), str(one), str(two)]) == 2
    assert "in two shards" in capsys.readouterr().err


# -- four shards, one lost, one host down: the suite as CI runs it ---------------------------

DOWN = "ssh+persist://root@127.0.0.1:1"  # nothing listens on port 1: refused at once
FLEET = """
system: fleet
runbook: runbook.md
hosts:
{hosts}
checks:
  commands:
{checks}
"""


SPECS = {f"h{index}": f"local://?timeout={20 + index}" for index in range(7)} | {"down": DOWN}


def write_fleet(folder: Path) -> Path:
    """Seven local:// hosts (distinct specs, so distinct hosts for the split) and one that is down."""
    specs = SPECS
    checks = "\n".join(
        f"    - {{id: up-{host}, title: host answers, run: 'true', host: {host}, severity: P2, "
        f"section: '1', remedy: look}}"
        for host in specs
    )
    hosts = "\n".join(f'  {host}: "{spec}"' for host, spec in specs.items())
    (folder / "runbook.md").write_text("# r\n")
    description = folder / "fleet.yml"
    description.write_text(FLEET.format(hosts=hosts, checks=checks))
    return description


def run_shard(description: Path, shard: str, reports: Path) -> int:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", "-q", f"--systems={description}", f"--shard={shard}"]
    command.append(f"--reports-dir={reports}")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode


@pytest.mark.slow
def test_four_shards_with_one_missing_and_one_host_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21 goal 4: the merged report names the shard that never reported; the exit code is not 0."""
    description = write_fleet(tmp_path)
    split = shard_of_hosts(load_systems(description, None), 4)
    lost = next(k for k in (1, 2, 3, 4) if k != split[DOWN] and k in split.values())
    folders = []
    for k in (1, 2, 3, 4):
        if k != lost:  # the lost shard's job timed out: it wrote no report
            run_shard(description, f"{k}/4", tmp_path / f"shard-{k}")
        folders.append(tmp_path / f"shard-{k}" / "latest")

    out = tmp_path / "merged"
    assert merge.main([str(out), *map(str, folders)]) == 2
    said = capsys.readouterr().err
    assert f"shard {lost}/4: no report among the folders" in said
    assert f"{folders[lost - 1]}: no summary.json" in said
    document = json.loads((out / "summary.json").read_text())
    assert document["run"]["exit_status"] == 2
    assert len(document["run"]["missing_shards"]) == 2
    assert len(document["run"]["shards"]) == 3
    outcomes = {check["id"]: check["outcome"] for check in document["checks"]}
    assert outcomes["fleet:reachable-down"] == "failed"
    lost_hosts = [name for name, spec in SPECS.items() if split[spec] == lost]
    assert lost_hosts and not any(f"fleet:up-{name}" in outcomes for name in lost_hosts)
    errors = [error.get("message") for error in ET.parse(out / "junit.xml").getroot().iter("error")]
    assert f"shard missing: shard {lost}/4: no report among the folders" in errors
    assert f"Shard missing: shard {lost}/4" in (out / "report.html").read_text()

    # A CI job that passes only the folders it received still learns which shard is missing.
    present = [str(folder) for folder in folders if folder.exists()]
    assert merge.main([str(tmp_path / "merged-glob"), *present]) == 2
    assert f"shard {lost}/4: no report among the folders" in capsys.readouterr().err
