"""Values a host serves that compare false with everything: NaN must fail a bound, never pass it."""

from __future__ import annotations

import json

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


def test_a_nan_rate_fails_the_limit() -> None:
    check = rates.RatesCheck(
        id="r",
        title="5xx rate",
        severity="P2",
        section="1.",
        remedy="fix",
        metric="http_requests_total",
        max_per_minute=5,
        prometheus={"url": "http://127.0.0.1:9/"},
    )
    with pytest.raises(CheckFailed, match=r"not a number for \(all\)"):
        rates._judge(check, 5, {"": float("nan")}, 300, "prometheus")
