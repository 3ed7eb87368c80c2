"""`--shard K/N` splits hosts as a partition, the same in every job; `runbook.merge` joins the reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runbook.describe.loader import load_systems
from runbook.readers import merge
from runbook.run.shard import parse_shard, shard_of_hosts

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
