"""Values a host serves that compare false with everything: NaN must fail a bound, never pass it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runbook.checks import rates
from runbook.checks.metrics import SampleBounds
from runbook.describe.json_conditions import JsonCondition
from runbook.errors import CheckFailed


@pytest.mark.parametrize("bound", [{"max": 10}, {"min": 100}, {"min": 0, "max": 1e9}])
@pytest.mark.parametrize("text", ['{"n": NaN}', '{"n": Infinity}', '{"n": -Infinity}'])
def test_a_json_nan_fails_every_bound(bound: dict[str, float], text: str) -> None:
    condition = JsonCondition(path="n", **bound)
    assert condition.failure(json.loads(text)) == f"n = {json.dumps(json.loads(text)['n'])} is not a number"


@pytest.mark.parametrize("bound", [{"max": 10}, {"min": 100}])
def test_a_metrics_nan_is_outside_every_bound(bound: dict[str, float]) -> None:
    bounds = SampleBounds(name="queue_size", **bound)
    assert bounds.outside(float("nan")) == "nan is not a number a bound can judge"
    assert bounds.outside(float("inf")) == "inf is not a number a bound can judge"


def rates_check(**limit: float) -> rates.RatesCheck:
    return rates.RatesCheck(
        id="r",
        title="5xx rate",
        severity="P2",
        section="1.",
        remedy="fix",
        metric="http_requests_total",
        prometheus={"url": "http://127.0.0.1:9/"},
        **limit,
    )


def test_a_nan_rate_fails_the_limit() -> None:
    check = rates_check(max_per_minute=5)
    with pytest.raises(CheckFailed, match=r"not a number for \(all\)"):
        rates._judge(check, 5, {"": float("nan")}, 300, "prometheus")


DEEP = "[" * 100_000 + "]" * 100_000


def test_a_body_nested_past_the_recursion_limit_is_no_json_not_a_crash() -> None:
    from runbook.checks.http import _json_or_none

    assert _json_or_none(DEEP) is None


@pytest.mark.parametrize(
    "stored",
    [
        DEEP,
        '{"version": 1, "sources": []}',
        '{"version": 1, "sources": {"s": [[1, {"a": "x"}], "junk", [2]]}}',
        '{"version": 1, "sources": {"s": [[1, {"a": NaN}]]}}',
        "[1, 2, 3]",
    ],
)
def test_a_corrupt_samples_file_starts_afresh(tmp_path: Path, stored: str) -> None:
    from runbook.host.samples import FILE_NAME, SampleStore, Snapshot

    (tmp_path / FILE_NAME).write_text(stored, encoding="utf-8")
    store = SampleStore(tmp_path)
    history = store.record("s", Snapshot(10.0, {"a": 1.0}), window=600)
    assert history[-1] == Snapshot(10.0, {"a": 1.0})
    assert all(value == value for item in history for value in item.values.values())  # no NaN


@pytest.mark.parametrize(
    "probes",
    ["[]", '"x"', '{"rate_limit a": [1, true]}', '{"rate_limit a": {"time": "NaN", "passed": 1}}'],
)
def test_corrupt_probe_verdicts_are_none_and_are_written_over(tmp_path: Path, probes: str) -> None:
    from runbook.host.samples import FILE_NAME, Probe, SampleStore

    (tmp_path / FILE_NAME).write_text(
        f'{{"version": 1, "sources": {{}}, "probes": {probes}}}', encoding="utf-8"
    )
    store = SampleStore(tmp_path)
    assert store.last_probe("rate_limit a") is None
    store.record_probe("rate_limit a", Probe(10.0, True, "x" * 5000, "held"))
    assert store.last_probe("rate_limit a") == Probe(10.0, True, "x" * 2000, "held")


@pytest.mark.parametrize(("captured", "segment"), [("..", "%2E%2E"), (".", "%2E"), ("a/../b", "a%2F..%2Fb")])
def test_a_captured_value_stays_in_its_path_segment(captured: str, segment: str) -> None:
    """A captured '..' turned /api/customers/{{cid}}/balance into /api/balance on the server."""
    import httpx

    from runbook.checks.scenario import _segment

    assert _segment(captured) == segment
    url = httpx.URL(f"http://127.0.0.1/api/customers/{_segment(captured)}/balance")
    assert url.raw_path == f"/api/customers/{segment}/balance".encode()


@pytest.mark.parametrize(
    ("value", "shown"), [(1.004, "1.004"), (1.0000004, "1.0000004"), (100.4, "100.4"), (7.5, "7.5")]
)
def test_a_rate_over_its_limit_is_printed_over_it(value: float, shown: str) -> None:
    """'rose 1/min > 1/min' (three digits of 1.004) said nothing of why the check failed."""
    check = rates_check(max_increase=int(value))
    with pytest.raises(CheckFailed, match=rf"grew by {re.escape(shown)} > {int(value)} "):
        rates._judge(check, int(value), {"": value}, 300, "prometheus")


def test_a_huge_captured_value_fails_its_step_cleanly() -> None:
    """A 100 kB value captured from an answer would become the next request's URL and header."""
    from runbook.checks.scenario import MAX_CAPTURED, Step, _captures

    step = Step(name="code", method="POST", url="/api/code", capture={"customer_id": "customer.id"})
    assert _captures(step, {"customer": {"id": "c-1"}}, "POST /api/code", {}) == {"customer_id": "c-1"}
    with pytest.raises(CheckFailed) as failed:
        _captures(step, {"customer": {"id": "x" * 100_000}}, "POST /api/code", {})
    assert failed.value.found == (
        f"customer.id is 100000 characters long, more than a captured value may be ({MAX_CAPTURED}; "
        "POST /api/code)"
    )
