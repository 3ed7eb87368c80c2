"""docs/ci.md's jobs are copy-paste material: their YAML parses and every suite option they use exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "docs" / "ci.md"
ALIASES = {"--junitxml": "--junit-xml"}  # pytest's help names one spelling


def blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", CI.read_text(encoding="utf-8"), re.S)


def test_jobs_parse_as_yaml() -> None:
    jobs = [yaml.safe_load(block) for block in blocks()]
    assert len(jobs) == 4
    gitlab, github = jobs[:2]
    assert gitlab["smoke-gate"]["artifacts"]["reports"]["junit"] == "out/junit.xml"
    steps = github["jobs"]["smoke"]["steps"]
    assert any("upload-artifact" in str(step.get("uses", "")) for step in steps)


def test_shard_jobs_cover_every_shard_and_merge_whatever_arrived() -> None:
    _, _, gitlab, github = [yaml.safe_load(block) for block in blocks()]
    total = gitlab["daily-shard"]["parallel"]
    assert "--shard=$CI_NODE_INDEX/$CI_NODE_TOTAL" in gitlab["daily-shard"]["script"][0]
    merge = gitlab["daily-merge"]
    assert merge["when"] == "always"
    assert merge["script"][-1].endswith(" ".join(f"out/shard-{k}" for k in range(1, total + 1)))
    shards = github["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1))
    assert github["jobs"]["shard"]["strategy"]["fail-fast"] is False
    assert github["jobs"]["merge"]["if"] == "always()"
    steps = github["jobs"]["merge"]["steps"]
    merged = [step["run"] for step in steps if "runbook.merge" in step.get("run", "")]
    assert merged[0].endswith(" ".join(f"out/shard-{k}" for k in shards))


@pytest.mark.slow
def test_options_used_exist() -> None:
    used = set(re.findall(r"(--[a-z][a-z-]+)=", "\n".join(blocks())))
    assert {"--wait-ready", "--junitxml", "--html", "--notify", "--report-url"} <= used
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for option in used:
        assert ALIASES.get(option, option) + "=" in done.stdout, option
