"""Writing a description without reading the model source (issue 19 point 4).

`python -m runbook validate` lists every problem of every file at once, each with its
file, field and line (exit 4; 0 when all are valid); `python -m runbook list` shows the
checks a marker expression selects, as pytest's -m would; a field that belongs to another
kind names that kind. All in-process through runbook.__main__.main.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runbook.__main__ import main
from runbook.describe.loader import DescriptionError, load_file

REPO = Path(__file__).resolve().parents[1]
COMMON = 'severity: P2\n      section: "1"\n      remedy: see the runbook'


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).replace("COMMON", COMMON), encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


GOOD = """\
    system: shop
    runbook: shop.md
    hosts: {server: "local://"}
    checks:
      files:
        - id: etc
          title: /etc is a directory
          path: /etc
          type: directory
          COMMON
          source: {lines: 3-4, quote: "etc is there"}
      resources:
        - id: disk
          title: disk under 90%
          disk: /
          max_used_percent: 90
          markers: [smoke]
          COMMON
    """

BROKEN = """\
    system: Shop_2
    runbook: shop.md
    hosts: {server: "local://"}
    checks:
      files:
        - id: etc
          title: /etc is a directory
          path: etc
          COMMON
      logs:
        - id: app-log
          title: the app log has no errors
          container: app
          owner: root
          pattern: ERROR
          COMMON
          severity: P7
    """


def test_validate_exits_0_for_valid_descriptions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "shop.yml", GOOD)
    code, out = run(["validate", f"--systems={tmp_path}"], capsys)
    assert code == 0, out
    assert "1 description(s) valid (2 checks)" in out


def test_validate_lists_every_problem_of_every_file_with_file_field_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # severity twice in one mapping is refused as YAML; a second file keeps its own problems.
    broken = write(tmp_path, "a.yml", BROKEN.replace("      severity: P7\n", ""))
    other = write(tmp_path, "b.yml", "system: b\nrunbook: b.md\nhosts: {server: nohost}\nchecks: {}\n")
    unreadable = write(tmp_path, "c.yml", "system: c\n  bad: [\n")
    code, out = run(["validate", f"--systems={tmp_path}"], capsys)
    assert code == 4, out
    lines = out.splitlines()
    assert f"{broken}:1: system: String should match pattern '^[a-z0-9][a-z0-9-]*$'" in lines
    assert f"{broken}:8: checks.files[0] (id etc).path: String should match pattern '^/'" in lines
    assert any(
        line.startswith(f"{broken}:16: checks.logs[0] (id app-log).owner: Extra inputs") for line in lines
    )
    assert any(
        line.startswith(f"{other}:3: hosts: host 'server': 'nohost' is not a host spec") for line in lines
    )
    assert any(line.startswith(f"{unreadable}:2: invalid YAML") for line in lines), out
    assert lines[-1] == "5 problem(s) in 3 file(s); 0 description(s) valid"


def test_validate_places_an_overlays_problem_in_the_file_that_says_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "shop.yml", GOOD)
    overlay = write(
        tmp_path / "staging",
        "shop.yml",
        """\
        extends: ../shop.yml
        checks:
          resources:
            - id: disk
              max_used_percent: 101
        """,
    )
    code, out = run(["validate", f"--systems={overlay.parent}", "--json"], capsys)
    assert code == 4
    problems = json.loads(out)["problems"]
    assert problems == [
        {
            "file": str(overlay.resolve()),
            "line": 5,
            "field": "checks.resources[0] (id disk).max_used_percent",
            "message": problems[0]["message"],
        }
    ]


def test_validate_places_a_whole_system_error_by_the_place_it_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "shop.yml", GOOD.replace("id: disk", "id: etc"))
    code, out = run(["validate", f"--systems={path}"], capsys)
    assert code == 4
    assert f"{path}:15: checks.resources[0] (id etc): check id 'etc' is used twice" in out


def test_validate_of_the_suites_own_descriptions_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """The lab overlays (hosts and the site's params) are clean; the production files alone lack
    only what their runbooks leave to the site: a run without those params stops with exit 4."""
    code, out = run(["validate", f"--systems={REPO / 'systems' / 'lab'}"], capsys)
    assert code == 0, out
    code, out = run(["validate", f"--systems={REPO / 'systems'}"], capsys)
    problems = [line for line in out.splitlines() if line.startswith("systems/") or ".yml" in line]
    assert code == 4 and problems, out
    assert all("no value: run with --param" in line for line in problems[:-1]), out


def test_a_field_of_another_kind_names_that_kind(tmp_path: Path) -> None:
    path = write(tmp_path, "shop.yml", BROKEN.replace("Shop_2", "shop").replace("path: etc", "path: /etc"))
    path.write_text(path.read_text().replace("      severity: P7\n", ""))
    with pytest.raises(DescriptionError) as info:
        load_file(path)
    assert (
        "checks.logs[0] (id app-log).owner: Extra inputs are not permitted; kind logs has no 'owner': "
        "owner is a field of kind files"
    ) in str(info.value)


def test_list_selects_as_pytest_m_and_shows_where_each_check_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "shop.yml", GOOD)
    code, out = run(["list", f"--systems={tmp_path}", "-m", "daily and not smoke"], capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0].split()[:5] == ["shop:etc", "files", "P2", "daily,incident", "/etc"]
    assert lines[0].endswith(f"({path}:6)  runbook lines 3-4")
    assert lines[1] == "1 check(s) selected by -m 'daily and not smoke'"

    code, out = run(["list", f"--systems={tmp_path}", "-m", "smoke", "--system", "shop", "--json"], capsys)
    assert code == 0
    assert json.loads(out) == [
        {
            "system": "shop",
            "id": "disk",
            "kind": "resources",
            "severity": "P2",
            "markers": ["smoke"],
            "title": "disk under 90%",
            "hosts": ["server"],
            "description": f"{path}:15",
            "source": [],
            "section": "1",
        }
    ]


def test_list_refuses_a_bad_expression_and_an_unknown_system(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "shop.yml", GOOD)
    assert run(["list", f"--systems={tmp_path}", "-m", "daily and"], capsys)[0] == 4
    code, out = run(["list", f"--systems={tmp_path}", "--system", "nope"], capsys)
    assert code == 4 and "--system nope: not described" in out
    assert run(["list", f"--systems={tmp_path}", "-m", "incident and smoke"], capsys)[0] == 1


def test_validate_says_ids_twice_and_unknown_hosts_beside_field_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pydantic runs the whole-system validator only once fields are valid, and it stops at one."""
    TWICE = "check id 'etc' is used twice (first: checks.files[0] (id etc))"
    text = GOOD.replace("id: disk", "id: etc").replace(
        "markers: [smoke]", "markers: [smoke]\n          host: db"
    )
    path = write(tmp_path, "shop.yml", text.replace("type: directory", "type: folder"))
    code, out = run(["validate", f"--systems={path}"], capsys)
    assert code == 4
    assert out.splitlines() == [
        f"{path}:9: checks.files[0] (id etc).type: Input should be 'file' or 'directory'",
        f"{path}:15: checks.resources[0] (id etc).id: {TWICE}",
        f"{path}:20: checks.resources[0] (id etc).host: host 'db' is not one of ['server']",
        "3 problem(s) in 1 file(s); 0 description(s) valid",
    ]
    path.write_text(path.read_text().replace("type: folder", "type: directory"))
    code, out = run(["validate", f"--systems={path}"], capsys)
    assert out.splitlines()[:2] == [
        f"{path}:15: checks.resources[0] (id etc): {TWICE}",
        f"{path}:20: checks.resources[0] (id etc).host: host 'db' is not one of ['server']",
    ]
