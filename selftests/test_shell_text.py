"""A secret in a shell command is data: escaped for the quotes it stands in, never code.

Before, `run: KEY='${API_KEY}' ./smoke.sh` pasted the value as it was: a value holding a quote
ended the quotes and the rest ran (`x'; touch /tmp/pwned; echo '` made the file), and an ordinary
password with a `'` broke the command.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runbook.checks import commands
from runbook.describe import shell_text
from runbook.describe.loader import load_file
from runbook.host.target import Target

HOSTILE = [
    "plain",
    "it's",
    "x'; touch {flag}; echo '",
    'x"; touch {flag}; echo "',
    "$(touch {flag})",
    "`touch {flag}`",
    "a b\tc\nd",
    "back\\slash\\",
    "!bang*glob?[x]~",
    "",
]


@pytest.mark.parametrize(
    ("text", "position", "quoting"),
    [
        ("KEY='${A}'", 5, "single"),
        ('KEY="${A}"', 5, "double"),
        ("KEY=${A}", 4, "bare"),
        ("echo 'it''s' ${A}", 13, "bare"),
        ('echo "a\\"b" ${A}', 12, "bare"),
        ("echo \\' ${A}", 8, "bare"),
        ("echo \"'\" '${A}'", 10, "single"),
    ],
)
def test_the_quotes_a_shell_is_inside(text: str, position: int, quoting: str) -> None:
    assert text[position] == "$"
    assert shell_text.quoting_at(text, position) == quoting


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("template", ["printf %s '{ref}'", 'printf %s "{ref}"', "printf %s {ref}"])
def test_the_shell_reads_back_exactly_the_value(tmp_path: Path, value: str, template: str) -> None:
    flag = tmp_path / "pwned"
    value = value.format(flag=flag)
    text = template.format(ref="${V}")
    position = text.index("${V}")
    command = text.replace("${V}", shell_text.escaped(value, shell_text.quoting_at(text, position)))
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10, check=False)
    assert done.stdout == value and not flag.exists(), (command, done.stdout, done.stderr)


def test_a_hostile_secret_in_a_description_runs_as_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local: Target
) -> None:
    flag = tmp_path / "pwned"
    value = f"x'; touch {flag}; echo '"
    monkeypatch.setenv("SHOP_KEY", value)
    (tmp_path / "rb.md").write_text("# rb\n", encoding="utf-8")
    path = tmp_path / "shop.yml"
    path.write_text(
        "system: shop\nrunbook: rb.md\nhosts: {server: 'local://'}\nchecks:\n  commands:\n"
        "    - {id: smoke, title: the smoke script, run: \"printf %s '${SHOP_KEY}'\",\n"
        "       expect_stdout: '${SHOP_KEY}', severity: P2, section: s, remedy: r}\n",
        encoding="utf-8",
    )
    check = load_file(path).model.checks.commands[0]
    commands.verify(check, local)  # stdout is exactly the value: no CheckFailed
    assert not flag.exists()
