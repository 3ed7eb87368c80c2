"""Generated malformed descriptions: each loads, or is one DescriptionError naming the file.

The seeds are mutations of the real calendar description, at two levels: its text
(cut short, garbage bytes spliced in, a line replaced by YAML punctuation, a line
repeated or lost) and its data (a key dropped or renamed, a value replaced by any
YAML value). Anything else escaping the loader (TypeError, RecursionError, ...)
fails the test with the example that caused it.

Locally every run draws new examples; under CI (CI=true) the draw is fixed, so a new
find never blocks an unrelated change: it shows up on a developer's machine first.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile import PRODUCTION, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.describe.loader import DescriptionError, load_systems

TEXT = PRODUCTION.read_text(encoding="utf-8")
LINES = TEXT.splitlines(keepends=True)
DATA = yaml.safe_load(TEXT)
FUZZ = settings(
    max_examples=200,
    deadline=2000,
    database=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow],
)


def _places(node: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and index path of the description, to pick one to break."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield (*where, key)
        yield from _places(child, (*where, key))


PLACES = sorted(set(_places(DATA)), key=repr)

YAML_PUNCTUATION = st.text(
    alphabet=st.sampled_from(list(":-?[]{},&*!|>'\"%@`#\\ \t\n.~0123456789abcxyzé\x00\x85\ufeff")),
    max_size=30,
)
ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["${UNSET_VAR}", "24h", "-1", "1G", ".inf", "P1", "local://", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def broken_texts(draw: st.DrawFn) -> bytes:
    body = TEXT.encode()
    how = draw(st.sampled_from(["truncate", "splice", "replace-line", "repeat-line", "drop-line"]))
    if how == "truncate":
        return body[: draw(st.integers(0, len(body)))]
    if how == "splice":
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(st.binary(min_size=1, max_size=12)) + body[at:]
    lines = list(LINES)
    at = draw(st.integers(0, len(lines) - 1))
    if how == "replace-line":
        lines[at] = draw(YAML_PUNCTUATION) + "\n"
    elif how == "repeat-line":
        lines.insert(at, lines[at])
    else:
        del lines[at]
    return "".join(lines).encode("utf-8", "surrogatepass")


@st.composite
def broken_data(draw: st.DrawFn) -> bytes:
    data = copy.deepcopy(DATA)
    *parents, last = draw(st.sampled_from(PLACES))
    node: Any = data
    for part in parents:
        node = node[part]
    how = draw(st.sampled_from(["drop", "rename", "replace"]))
    if how == "drop":
        del node[last]
    elif how == "rename" and isinstance(node, dict):
        typo = st.sampled_from([f"{last}s", str(last)[:-1], f"x-{last}"])
        node[draw(st.text(min_size=1, max_size=12) | typo)] = node.pop(last)
    else:
        node[last] = draw(ANY_VALUE)
    # libyaml's emitter when there is one: the pure-Python one took most of each example's time
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True).encode()


@pytest.fixture(scope="module")
def description(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file, rewritten by every example (a fresh tmp_path per example would be too slow)."""
    return tmp_path_factory.mktemp("fuzz") / "ai-calendar-assistant.yml"


def _loads_or_names_the_file(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        load_systems(path)
    except DescriptionError as exc:
        assert str(path) in str(exc)


@pytest.mark.slow
@FUZZ
@given(content=broken_texts())
def test_broken_text_loads_or_is_a_description_error(description: Path, content: bytes) -> None:
    _loads_or_names_the_file(description, content)


@pytest.mark.slow
@FUZZ
@given(content=broken_data())
def test_broken_data_loads_or_is_a_description_error(description: Path, content: bytes) -> None:
    _loads_or_names_the_file(description, content)


@pytest.mark.slow
@settings(FUZZ, max_examples=5, deadline=None)  # each example is a whole pytest process
@given(content=broken_texts() | broken_data())
def test_the_run_exits_4_or_collects(description: Path, content: bytes) -> None:
    """As the plugin runs it: exit 4 and one message, or a clean collection; never a traceback."""
    description.write_bytes(content)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    reports = description.parent / "reports"
    command = [sys.executable, "-m", "pytest", f"--systems={description}", f"--reports-dir={reports}"]
    done = subprocess.run(
        [*command, "--collect-only", "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode in (0, 4), output
    if done.returncode == 4:
        assert f"ERROR: {description}" in output
