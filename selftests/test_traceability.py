"""Production descriptions are traced to their runbooks, and lab overlays change nothing else.

Every check of `systems/*.yml` cites the runbook lines it asserts (`source:`), every source
stands in the statement inventory (`coverage:`), and every quote is still at its lines: a
runbook edit that moves or rewrites a statement fails here as drift. A lab overlay
(`systems/lab/*.yml`) may change only hosts, params and (through the environment) secrets, so
"green on the lab, each fault red" is proof about the production file itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.describe.coverage import CheckSource, Inventory, Statement, problems, quoted_at, system_coverage
from runbook.describe.model import Source
from runbook.describe.yamlfile import read_yaml

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = sorted((ROOT / "systems").glob("*.yml"))
OVERLAYS = sorted((ROOT / "systems" / "lab").glob("*.yml"))
# What an overlay may say: which file it extends, where the hosts are, the site's parameters.
OVERLAY_KEYS = {"extends", "hosts", "groups", "inventory", "params"}


@pytest.mark.parametrize("path", PRODUCTION, ids=lambda path: path.stem)
def test_every_check_cites_its_runbook_lines_and_none_drifted(path: Path) -> None:
    result = system_coverage(path)
    assert result.coverage is not None, f"{path.name}: no coverage: (statement inventory)"
    assert result.problems == []


@pytest.mark.parametrize("path", OVERLAYS, ids=lambda path: path.stem)
def test_a_lab_overlay_changes_only_hosts_and_params(path: Path) -> None:
    data = read_yaml(path)
    extra = sorted(key for key in data if key not in OVERLAY_KEYS and not str(key).startswith("x-"))
    assert extra == [], f"{path.name} changes {extra}: the lab must be laid out like production"
    assert data.get("extends") == f"../{path.name}"


RUNBOOK = ["# Title", "", "## 1) Check", "docker compose ps", "curl -fsS http://localhost/health", ""]


def _inventory(lines: str, quote: str, checked: list[str]) -> Inventory:
    statement = Statement(lines=lines, quote=quote, verify="the services run", checked=checked)
    return Inventory(system="x", statements=[statement])


def test_a_quote_that_moved_is_drift_and_says_where_it_went() -> None:
    source = Source(lines="4", quote="docker compose ps")
    assert quoted_at(RUNBOOK, source)
    moved = ["# Title", "", "an inserted line", "## 1) Check", "docker compose ps", ""]
    assert not quoted_at(moved, source)
    found = problems(
        _inventory("4", "docker compose ps", ["ps"]),
        [CheckSource("ps", "commands", [source])],
        moved,
        where="x.yml",
    )
    assert any("not at those lines (now at line 5)" in problem for problem in found), found


def test_ids_and_sources_must_meet_in_the_inventory() -> None:
    health = CheckSource("health", "http", [Source(lines="5", quote="curl -fsS")])
    found = problems(_inventory("4", "docker compose ps", ["ps", "gone"]), [health], RUNBOOK, where="x.yml")
    assert "x.yml: statements[0] (lines 4): no check 'gone' in the description" in found
    assert "check health: lines 5 are in no statement naming it" in found


def test_a_statement_has_exactly_one_status_and_a_reason_when_not_checked() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        Statement(lines="4", quote="docker", verify="x runs", checked=["a"], not_checked="action", reason="r")
    with pytest.raises(ValueError, match="need a reason"):
        Statement(lines="4", quote="docker", verify="x runs", not_checked="people")


@pytest.mark.slow
def test_coverage_command_prints_the_numbers(tmp_path: Path) -> None:
    (tmp_path / "runbook.md").write_text("\n".join(RUNBOOK), encoding="utf-8")
    (tmp_path / "x.cov.yml").write_text(
        "system: x\nstatements:\n"
        "  - {lines: 4, quote: docker compose ps, verify: services run, checked: [ps]}\n"
        "  - {lines: 5, quote: curl -fsS, verify: health answers, not_checked: external, reason: a CDN}\n",
        encoding="utf-8",
    )
    (tmp_path / "x.yml").write_text(
        "system: x\nrunbook: runbook.md\ncoverage: x.cov.yml\nhosts: {local: 'local://'}\n"
        "checks:\n  commands:\n    - {id: ps, title: services run, run: 'true', severity: P2,\n"
        "       section: '1)', remedy: fix, source: {lines: 4, quote: docker compose ps}}\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "runbook", "coverage", f"--systems={tmp_path / 'x.yml'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x: 2 statements / 1 checked / 0 partly / 1 not checked (external 1)"
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(as_json.stdout)[0]["reasons"] == {"external": 1}


@pytest.mark.slow
def test_a_failure_quotes_its_runbook_lines_in_every_report(tmp_path: Path) -> None:
    """And report.html says how much of the runbook is checked (its 'Runbook coverage')."""
    (tmp_path / "runbook.md").write_text("\n".join(RUNBOOK), encoding="utf-8")
    (tmp_path / "x.cov.yml").write_text(
        "system: x\nstatements:\n"
        "  - {lines: 4, quote: docker compose ps, verify: services run, checked: [gone]}\n"
        "  - {lines: 5, quote: curl -fsS, verify: health answers, not_checked: external, reason: a CDN}\n",
        encoding="utf-8",
    )
    (tmp_path / "x.yml").write_text(
        "system: x\nrunbook: runbook.md\ncoverage: x.cov.yml\nhosts: {local: 'local://'}\n"
        "checks:\n  files:\n    - {id: gone, title: the file is there, path: /nonexistent-x, severity: P2,\n"
        "       section: '1) Check', remedy: fix, source: {lines: 4, quote: docker compose ps}}\n",
        encoding="utf-8",
    )
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={tmp_path / 'x.yml'}"]
    done = subprocess.run(
        [*command, f"--reports-dir={reports}", "-m", "daily"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "says:     lines 4: «docker compose ps»" in done.stdout
    summary = json.loads((reports / "latest" / "summary.json").read_text(encoding="utf-8"))
    assert [check["source"] for check in summary["checks"] if check["check_id"] == "gone"] == [
        "lines 4: «docker compose ps»"
    ]
    html = (reports / "latest" / "report.html").read_text(encoding="utf-8")
    assert '<div class="rb-quote">lines 4: «docker compose ps»' in html  # the row's runbook cell
    assert '<th>says</th><td class="rb-quote">lines 4: «docker compose ps»</td>' in html  # its box
    assert "Runbook coverage" in html
    assert "<td>x</td><td>2</td><td>1</td><td>0</td>" in html
    assert "1 (external 1)</td>" in html
    assert "docker compose ps" in (reports / "latest" / "junit.xml").read_text(encoding="utf-8")


def test_the_readme_states_what_coverage_prints_today() -> None:
    """README's coverage table is the command's output: a runbook or description change that
    moves a number must move the README too, or the numbers quoted to readers go stale."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].isdigit():
            total, _, why = cells[4].partition(" (")
            reasons = {}
            for part in filter(None, why.rstrip(")").split(", ")):
                name, _, count = part.rpartition(" ")
                reasons[name.replace(" ", "-")] = int(count)
            rows[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]), int(total), reasons)
    printed = {}
    for path in PRODUCTION:
        coverage = system_coverage(path).coverage
        assert coverage is not None, path
        printed[coverage.system] = (
            coverage.statements,
            coverage.checked,
            coverage.partly,
            coverage.not_checked,
            dict(coverage.reasons),
        )
    assert rows == printed
