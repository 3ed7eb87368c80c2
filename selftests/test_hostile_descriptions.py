"""A broken description exits 4 naming file and field, in seconds, never a traceback (issue 6).

The cheap cases run in-process through the loader; the ones that once took minutes
or gigabytes (alias bomb, /dev/zero, a 2 GiB file) run only as the real run does,
in a pytest subprocess with a deadline and an address-space limit, so that a
regression fails this test instead of taking the machine down.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hostile import BACKUP, CASES, MINIMAL, REPO, Hostile, write

from runbook.describe.loader import DescriptionError, load_file, load_systems
from runbook.describe.yamlfile import MAX_BYTES

BOUNDED_SECONDS = 90  # a hang shows all the same; 30 s was outlived by a start at load 14
BOUNDED_BYTES = 2 * 1024**3


def _message(path: Path) -> str:
    with pytest.raises(DescriptionError) as info:
        load_systems(path)
    return str(info.value)


@pytest.mark.parametrize("case", [case for case in CASES if not case.heavy], ids=lambda case: case.name)
def test_hostile_description_is_one_message_naming_the_file(tmp_path: Path, case: Hostile) -> None:
    path = case.build(tmp_path)
    message = _message(path)
    assert str(path) in message
    assert case.said_in(message), message


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (BOUNDED_BYTES, BOUNDED_BYTES))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_run_exits_4_in_bounded_time_and_memory(tmp_path: Path, case: Hostile) -> None:
    path = case.build(tmp_path)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", f"--systems={path}", f"--reports-dir={tmp_path / 'r'}", "-q"]
    done = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUNDED_SECONDS,
        preexec_fn=_limit_memory,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 4, output
    assert "Traceback" not in output
    assert f"ERROR: {path}" in output or f"(named by extends: in {path})" in output
    assert case.said_in(output), output


# -- more odd input: each a DescriptionError, none a traceback ---------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param(
            "title: 2024-13-45\n", ":4:8: cannot read '2024-13-45': month must be in 1..12", id="date"
        ),
        pytest.param("command_timeout: .nan\n", ":4:18: '.nan' is not a finite number", id="nan"),
        pytest.param("command_timeout: -.inf\n", "'-.inf' is not a finite number", id="minus-inf"),
        pytest.param(f"command_timeout: {2**64}\n", "(at most 2**63-1)", id="past-int64"),
        pytest.param("command_timeout: 0x1ffffffffffffffff\n", "(at most 2**63-1)", id="hex"),
        pytest.param("command_timeout: " + "1:" * 5000 + "1\n", "is out of range", id="sexagesimal"),
        pytest.param("? [a, b]\n: 1\n", "found unhashable key", id="list-as-key"),
        pytest.param("checks: {}\n---\nchecks: {}\n", "but found another document", id="two-documents"),
        pytest.param("title: &t x\nchecks: &t {}\n", "found duplicate anchor 't'", id="duplicate-anchor"),
        pytest.param("title: *nowhere\n", "found undefined alias 'nowhere'", id="undefined-alias"),
        pytest.param("title: a\x00b\n", "control characters are not allowed", id="nul"),
        pytest.param(
            "checks: {a: 1, a: 2}\n", "key 'a' is given twice in one mapping (first on line 4)", id="flow"
        ),
        pytest.param("checks: {}\n<<: {a: 1}\n<<: {b: 2}\n", "key '<<' is given twice", id="merge-twice"),
        pytest.param(
            "features: [" + "0," * 100_001 + "]\n", "more than 100000 values in one file", id="wide"
        ),
    ],
)
@pytest.mark.slow
def test_odd_yaml_is_refused_where_it_is(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, "demo.yml", MINIMAL + text)
    message = _message(path)
    assert message.startswith(str(path))
    assert says in message


def test_a_key_overridden_after_a_merge_is_not_a_duplicate(tmp_path: Path) -> None:
    """`<<: *base` then the same key again is how YAML overrides: not a key given twice."""
    text = MINIMAL + "x-base: &base {title: base, max_age_hours: 1}\n"
    text += f"checks:\n  backups:\n    - {BACKUP}<<: *base, max_age_hours: 25}}\n"
    check = load_file(write(tmp_path, "demo.yml", text)).model.checks.backups[0]
    assert (check.title, check.max_age_hours) == ("fresh backup", 25)


def test_a_file_of_exactly_the_size_cap_is_read(tmp_path: Path) -> None:
    text = MINIMAL + "checks: {}\n"
    path = write(tmp_path, "demo.yml", text + "#" * (MAX_BYTES - len(text) - 1) + "\n")
    assert load_file(path).name == "demo"
    path.write_text(path.read_text() + "\n")
    assert "too large for a description" in _message(path)


@pytest.mark.parametrize(("special", "says"), [("fifo", "a pipe, not a file"), ("folder", "Is a directory")])
def test_a_description_that_is_not_a_file_is_refused_without_blocking(
    tmp_path: Path, special: str, says: str
) -> None:
    target = tmp_path / "special.yml"
    if special == "fifo":
        os.mkfifo(target)  # no writer: reading it would block for ever
    else:
        target.mkdir()
    path = write(tmp_path, "demo.yml", "extends: special.yml\n")
    assert says in _message(path)


def test_a_folder_holding_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yml")
    assert "pipe.yml: cannot read: a pipe, not a file" in _message(tmp_path)


def test_systems_pointing_at_a_device_says_so(tmp_path: Path) -> None:
    assert _message(Path("/dev/null")) == "/dev/null: not a file or folder of descriptions"


@pytest.mark.parametrize(
    ("extends", "says"),
    [
        pytest.param('""', "extends: must be a file path", id="empty"),
        pytest.param('"a\\0b.yml"', "embedded null byte", id="nul-byte"),
        pytest.param("{a: 1}", "extends: must be a file path", id="mapping"),
    ],
)
def test_bad_extends_values(tmp_path: Path, extends: str, says: str) -> None:
    path = write(tmp_path, "demo.yml", f"extends: {extends}\n")
    message = _message(path)
    assert str(path) in message
    assert says in message


def test_a_long_extends_chain_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "f0.yml", MINIMAL + "checks: {}\n")
    for level in range(1, 30):
        write(tmp_path, f"f{level}.yml", f"extends: f{level - 1}.yml\n")
    message = _message(tmp_path / "f29.yml")
    assert message == f"{tmp_path / 'f29.yml'}: extends: more than 10 files deep"


def test_an_overlay_check_without_id_is_refused_not_replacing_the_list(tmp_path: Path) -> None:
    """Before, it silently replaced every check of the kind with itself."""
    write(tmp_path, "base.yml", MINIMAL + f"checks:\n  backups: [{BACKUP}max_age_hours: 1}}]\n")
    overlay = write(tmp_path, "overlay.yml", "extends: base.yml\nchecks:\n  backups: [{max_age_hours: 2}]\n")
    assert _message(overlay) == (
        f"{overlay}: checks.backups[0]: needs an id (a string) to merge with the checks it extends"
    )


def test_non_string_keys_name_their_place(tmp_path: Path) -> None:
    path = write(tmp_path, "demo.yml", MINIMAL + "checks: {}\n1: one\nnull: nothing\n")
    message = _message(path)
    assert (
        message
        == f"{path}: invalid system description\n  1: Keys should be strings\n  None: Keys should be strings"
    )


def test_a_thousand_broken_checks_give_twenty_lines(tmp_path: Path) -> None:
    broken = "".join(f"    - {{id: c{n}}}\n" for n in range(1000))
    message = _message(write(tmp_path, "demo.yml", MINIMAL + "checks:\n  commands:\n" + broken))
    lines = message.splitlines()
    assert len(lines) == 22
    assert lines[-1].endswith("more")


# -- did you mean ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param(
            "check: {}\n", "check: Extra inputs are not permitted (did you mean 'checks'?)", id="top"
        ),
        pytest.param(
            "checks: {backup: []}\n",
            "checks.backup: Extra inputs are not permitted (did you mean 'backups'?)",
            id="kind",
        ),
        pytest.param(
            f"checks:\n  backups: [{BACKUP}max_age_hour: 25}}]\n",
            "checks.backups[0] (id fresh).max_age_hour: Extra inputs are not permitted "
            "(did you mean 'max_age_hours'?)",
            id="field",
        ),
        pytest.param("checks: {}\nzzzz: 1\n", "zzzz: Extra inputs are not permitted\n", id="nothing-close"),
    ],
)
def test_unknown_keys_suggest_the_closest_field(tmp_path: Path, text: str, says: str) -> None:
    assert says in _message(write(tmp_path, "demo.yml", MINIMAL + text)) + "\n"


# -- values that load, but must load right ---------------------------------------------------------


def test_a_block_scalar_log_pattern_loses_its_newline(tmp_path: Path) -> None:
    """`pattern: |` ends in a newline; grep would add the empty pattern, which matches every line."""
    text = textwrap.dedent(
        """\
        checks:
          logs:
            - id: started
              title: bot started
              severity: P2
              section: "1"
              remedy: restart
              container: bot
              must_match: true
              pattern: |
                started polling
        """
    )
    check = load_file(write(tmp_path, "demo.yml", MINIMAL + text)).model.checks.logs[0]
    assert check.pattern == "started polling"


def test_an_unexpected_error_still_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the loader must not turn a description into a traceback mid-run."""

    def broken(*_: object) -> None:
        raise TypeError("boom")

    monkeypatch.setattr("runbook.describe.loader.interpolate", broken)
    path = write(tmp_path, "demo.yml", MINIMAL + "checks: {}\n")
    assert _message(path) == f"{path}: cannot load: TypeError: boom"
