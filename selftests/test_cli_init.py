"""The suite works outside its clone: `python -m runbook init` writes a checklist project (issue 19 point 4).

Installed from its wheel into a fresh venv, in an empty folder with one description,
`pytest -m daily` said "no tests ran": the test entry files and the pytest settings lived
only in this repository. `init` writes them (from templates shipped as package data), with
tox.ini and, given `--system`, a commented starting description. The last test proves it
the way a user meets it: wheel built, installed into a new venv, init, pytest -m daily.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from runbook.__main__ import main
from runbook.describe.loader import load_file
from runbook.describe.model import CheckBase
from runbook.describe.schema import System

REPO = Path(__file__).resolve().parents[1]
GROUPS = ("health", "backup", "config")
NOT_SOURCE = (
    ".git",
    ".venv",
    ".tox",
    "build",
    "reports",
    "*.egg-info",
    "__pycache__",
    ".ruff_cache",
    "bench",
)
ETC_CHECK = (
    "checks:\n  files:\n    - {id: etc-dir, title: /etc is a directory, path: /etc, type: directory,\n"
    '       severity: P3, section: "1. Daily check", remedy: reinstall the system}\n'
)


def init(folder: Path, *args: str) -> int:
    return main(["init", str(folder), *args])


def test_init_writes_the_suites_entry_files_settings_and_tox(tmp_path: Path) -> None:
    assert init(tmp_path) == 0
    for group in GROUPS:
        written = (tmp_path / f"tests_{group}" / f"test_{group}.py").read_text(encoding="utf-8")
        assert written == (REPO / f"tests_{group}" / f"test_{group}.py").read_text(encoding="utf-8")
    ini = configparser.ConfigParser()
    ini.read(tmp_path / "pytest.ini")
    own = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"][
        "ini_options"
    ]
    assert ini["pytest"]["testpaths"].split() == own["testpaths"]
    assert ini["pytest"]["addopts"] == own["addopts"]
    assert ini["pytest"]["junit_family"] == own["junit_family"]
    assert ini["pytest"]["runbook_reports_dir"] == own["runbook_reports_dir"]
    assert ini["pytest"]["runbook_systems"] == "systems"
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(tmp_path / "tox.ini")
    env = tox["testenv:{daily,smoke,incident}"]
    assert env["passenv"].strip() == "*"
    assert env["commands"].strip() == "pytest -m {envname} {posargs}"
    assert (tmp_path / ".gitignore").read_text() == "reports/\n"


def test_init_leaves_existing_files_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tox.ini").write_text("[tox]\n# ours\n")
    assert init(tmp_path, "--system", "shop") == 0
    (tmp_path / "systems" / "shop.yml").write_text("edited")
    assert init(tmp_path, "--system", "shop") == 0
    assert (tmp_path / "tox.ini").read_text() == "[tox]\n# ours\n"
    assert (tmp_path / "systems" / "shop.yml").read_text() == "edited"
    assert f"kept  {tmp_path / 'systems/shop.yml'} (exists)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"), [(["--system", "Shop!"], "--system"), (["--host", "server1"], "--host")]
)
def test_init_refuses_a_bad_name_or_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert init(tmp_path, *args) == 4
    assert says in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_starting_description_loads_and_explains_every_common_field(tmp_path: Path) -> None:
    assert init(tmp_path, "--system", "shop", "--host", "ssh://deploy@shop.example.com") == 0
    path = tmp_path / "systems" / "shop.yml"
    system = load_file(path)
    assert system.model.hosts == {"server": "ssh://deploy@shop.example.com"}
    assert system.model.checks.all() == []
    assert system.runbook_path == (tmp_path / "runbooks" / "shop.md").resolve()
    assert system.runbook_path.is_file()
    text = path.read_text(encoding="utf-8")
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    for field in CheckBase.model_fields:
        assert re.search(rf"^#\s+{field}:", comments, re.M), field
    for field in System.model_fields:
        assert re.search(rf"^#?\s*{field}:", text, re.M), field


def test_the_examples_are_valid_once_uncommented_and_name_only_example_hosts(tmp_path: Path) -> None:
    assert init(tmp_path, "--system", "shop") == 0
    path = tmp_path / "systems" / "shop.yml"
    text = path.read_text(encoding="utf-8")
    head, _, examples = text.partition("checks: {}\n")
    uncommented = head + "checks:\n" + re.sub(r"^#  ", "  ", examples, flags=re.M)
    path.write_text(uncommented, encoding="utf-8")
    kinds = {check.kind for check in load_file(path).model.checks.all()}
    assert {"files", "resources", "systemd", "http", "backups", "containers"} <= kinds
    domains = set(re.findall(r"(?:https?://|@)([A-Za-z0-9.-]+\.[a-z]{2,})", text))
    assert domains and all(domain.endswith("example.com") for domain in domains), domains


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_a_daily_checklist_in_an_empty_folder(tmp_path: Path) -> None:
    """SLOW (about a minute): the wheel, as `pip install runbook-suite` gets it, then init and pytest.

    The wheel is built with `pip wheel --no-deps` (its build backend from pip's cache or the
    index) and installed alone (--no-deps --no-index) into a new venv. Its dependencies are
    not downloaded again: a .pth file adds this environment's site-packages after the venv's
    own, so `runbook` itself is imported from the wheel (asserted), never from this clone.
    """
    wheels, venv, project = tmp_path / "wheels", tmp_path / "venv", tmp_path / "infra"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "PYTHON"))}
    # Built from a copy: setuptools' build/ folder in the clone would keep files deleted since.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True, env=env, timeout=300, capture_output=True,
    )  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "runbook_suite_dependencies.pth").write_text(_site_packages() + "\n")
    (wheel,) = wheels.glob("runbook_suite-*.whl")
    install = ["install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, *install],
        check=True, env=env, timeout=300, capture_output=True,
    )  # fmt: skip
    project.mkdir()

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *argv], cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    where = run("-c", "import runbook; print(runbook.__file__)").stdout.strip()
    assert where.startswith(purelib), where
    done = run("-m", "runbook", "init", "--system", "shop", "--host", "local://")
    assert done.returncode == 0, done.stdout + done.stderr
    description = project / "systems" / "shop.yml"
    description.write_text(description.read_text().replace("checks: {}\n", ETC_CHECK), encoding="utf-8")
    done = run("-m", "runbook", "validate")
    assert done.returncode == 0, done.stdout + done.stderr
    done = run("-m", "pytest", "-m", "daily")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout, done.stdout
    latest = project / "reports" / "latest"
    for name in ("report.html", "junit.xml", "summary.json"):
        assert (latest / name).is_file(), name
    assert "shop:etc-dir" in (latest / "summary.json").read_text()
