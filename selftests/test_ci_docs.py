"""docs/ci.md's jobs are copy-paste material: their YAML parses and every suite option they use exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "docs" / "ci.md"
ALIASES = {"--junitxml": "--junit-xml"}  # pytest's help names one spelling


def blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", CI.read_text(encoding="utf-8"), re.S)


def test_jobs_parse_as_yaml() -> None:
    jobs = [yaml.safe_load(block) for block in blocks()]
    assert len(jobs) == 2
    gitlab, github = jobs
    assert gitlab["smoke-gate"]["artifacts"]["reports"]["junit"] == "out/junit.xml"
    steps = github["jobs"]["smoke"]["steps"]
    assert any("upload-artifact" in str(step.get("uses", "")) for step in steps)


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
