"""Options that used to crash the run at its end or hide a secret: each is exit 4 at the start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = """\
system: opts
runbook: runbook.md
hosts: {local: "local://"}
checks:
  files:
    - {id: etc, title: etc exists, path: /etc, type: directory, severity: P3, section: "1.", remedy: fix}
"""


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("--webhook-url=http://[::1", "--webhook-url: 'http://[::1' is not a URL"),
        ("--webhook-url=ftp://example.com/hook", "is not an http(s) URL with a host"),
        ("--keep-days=inf", "--keep-days: inf is not 0 (keep all) to 3660 days"),
        ("--keep-days=nan", "--keep-days: nan is not 0"),
        ("--history-dsn=mysql://user:S3cretPass@db.example.com/x", "mysql:// is not a history store"),
        ("--history-dsn=postgresql://u@127.0.0.1:1/db?password=S3cretPass", "password=***"),
    ],
)
@pytest.mark.slow
def test_a_bad_option_is_exit_4_naming_it_and_no_secret(tmp_path: Path, option: str, said: str) -> None:
    description = tmp_path / "opts.yml"
    description.write_text(DESCRIPTION, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "RUNBOOK_"))}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
    command += [f"--reports-dir={tmp_path / 'r'}", "-q", option]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert said in done.stdout + done.stderr
    assert "S3cretPass" not in done.stdout + done.stderr
    assert not list(tmp_path.glob("**/*S3cretPass*"))  # no SQLite file named with the password


FAILING = """\
system: opts
runbook: runbook.md
hosts: {local: "local://"}
checks:
  commands:
    - {id: says, title: says ok, run: "echo not-ok", expect_stdout: ok, severity: P2, section: "1.",
       remedy: fix}
"""


@pytest.mark.slow
def test_links_planted_in_a_reused_output_folder_are_never_followed(tmp_path: Path) -> None:
    """--junitxml=DIR/junit.xml --bundle --incident into a folder where links wait for the run."""
    description = tmp_path / "opts.yml"
    description.write_text(FAILING, encoding="utf-8")
    out = tmp_path / "out"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    victims = tmp_path / "victims"
    victims.mkdir()
    (out / "evidence" / "opts").mkdir(parents=True)
    (out / "evidence" / "opts" / "says").symlink_to(victims)  # a folder on the way is a link
    (out / ".incident.md.tmp").symlink_to(victim)
    (out / "incident.md").symlink_to(victim)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
    command += [f"--junitxml={out / 'junit.xml'}", "--bundle", "--incident", "-q"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "RUNBOOK_"))}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert list(victims.iterdir()) == []
    assert not (out / "incident.md").is_symlink()  # replaced by the run's own file
    assert "not-ok" in (out / "incident.md").read_text(encoding="utf-8")


GOOD_RUN = '{"started": "2026-12-07T00:00:00Z", "finished": "2026-12-07T00:00:01Z", "systems": ["x"]}'


@pytest.mark.parametrize(
    ("summary", "said"),
    [
        ("{not json", "not JSON"),
        ("[" * 100_000, "not JSON"),
        ('{"format": "runbook-summary/1", "run": [], "checks": []}', "run: needs started and finished"),
        ('{"format": "runbook-summary/1", "run": ' + GOOD_RUN + ', "checks": {}}', "checks: not a list"),
        ('{"format": "runbook-summary/1", "run": ' + GOOD_RUN + ', "checks": [{"id": "a"}]}', "checks[0]"),
        ("FIFO", "not a regular file"),
    ],
)
def test_merge_refuses_a_malformed_shard_with_exit_2(tmp_path: Path, summary: str, said: str) -> None:
    """Exit 1 would mean 'a check failed'; a traceback or a hang would mean nothing at all."""
    shard = tmp_path / "shard-1"
    shard.mkdir()
    if summary == "FIFO":
        os.mkfifo(shard / "summary.json")
    else:
        (shard / "summary.json").write_text(summary, encoding="utf-8")
    (shard / "junit.xml").write_text('<testsuite name="pytest" tests="0"/>', encoding="utf-8")
    command = [sys.executable, "-m", "runbook.merge", str(tmp_path / "out"), str(shard)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_malformed_history_row_does_not_end_the_run_without_reports(tmp_path: Path) -> None:
    import sqlite3

    description = tmp_path / "opts.yml"
    description.write_text(FAILING, encoding="utf-8")
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
    command += [f"--reports-dir={reports}", "-q"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "RUNBOOK_"))}
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stdout[-2000:]
    with sqlite3.connect(reports / "history.sqlite") as store:
        store.execute("UPDATE runbook_runs SET started = 'yesterday-ish'")
    before = (reports / "latest").resolve()
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Traceback" not in second.stdout + second.stderr
    assert (reports / "latest").resolve() != before
    assert (reports / "latest" / "report.html").is_file()


@pytest.mark.slow
def test_a_reports_dir_that_is_a_file_is_exit_4_saying_so(tmp_path: Path) -> None:
    description = tmp_path / "opts.yml"
    description.write_text(DESCRIPTION, encoding="utf-8")
    (tmp_path / "reports").write_text("not a folder\n", encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
    command += [f"--reports-dir={tmp_path / 'reports'}", "-q"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "RUNBOOK_"))}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "is a file, not a folder for the run's reports" in done.stderr
