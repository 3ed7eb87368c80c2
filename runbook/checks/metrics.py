"""Prometheus metrics of a service (runbook: "`GET /metrics` serves Prometheus text format").

The endpoint is scraped like any (runbook.host.endpoint: from the runner with the key
in a header, or inside the container when the app answers localhost only) and
parsed with prometheus_client's parser (runbook.host.prometheus). A check asserts that
named metrics exist and that samples, picked by name and label regexes, are
within bounds; the failure shows the values found.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import CheckBase, Model, regex
from runbook.errors import CheckFailed
from runbook.host import endpoint, prometheus
from runbook.host.endpoint import Endpoint
from runbook.host.prometheus import METRIC_NAME
from runbook.host.target import Target

SHOWN_SAMPLES = 10


class SampleBounds(Model):
    """Samples of one metric, picked by label regexes (full match, as `=~`), within bounds."""

    name: str = Field(pattern=METRIC_NAME.pattern, max_length=200)
    labels: dict[str, str] = Field(default={}, description="label -> regex, e.g. {status: '5..'}")
    min: float | None = None
    max: float | None = None
    aggregate: Literal["each", "sum"] = Field(
        default="each", description="each: every sample within bounds; sum: their sum"
    )
    missing: Literal["fail", "zero"] = Field(
        default="fail", description="no sample: a failure, or 0 (counters appear at their first event)"
    )

    @field_validator("labels")
    @classmethod
    def _regexes(cls, labels: dict[str, str]) -> dict[str, str]:
        return {label: regex(pattern) for label, pattern in labels.items()}

    @model_validator(mode="after")
    def _bounded(self) -> SampleBounds:
        if self.min is None and self.max is None:
            raise ValueError(f"{self.name}: set min, max or both")
        return self

    def selector(self) -> str:
        """'http_requests_total{status=~"5.."}'."""
        labels = ",".join(f'{label}=~"{pattern}"' for label, pattern in self.labels.items())
        return f"{self.name}{{{labels}}}" if labels else self.name

    def bounds(self) -> str:
        low = f">= {self.min:g}" if self.min is not None else ""
        high = f"<= {self.max:g}" if self.max is not None else ""
        return " and ".join(part for part in (low, high) if part)

    def outside(self, value: float) -> str | None:
        if not math.isfinite(value):  # NaN passes every comparison: it is outside every bound
            return f"{value:g} is not a number a bound can judge"
        if self.min is not None and value < self.min:
            return f"{value:g} < {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{value:g} > {self.max:g}"
        return None


class MetricsCheck(CheckBase, Endpoint):
    """Prometheus metrics: named metrics exist, samples within bounds."""

    kind: ClassVar[str] = "metrics"

    expect_status: list[int] = [200]
    present: list[str] = Field(default=[], description="metric (family or sample) names that must exist")
    samples: list[SampleBounds] = []

    @field_validator("present")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not METRIC_NAME.match(name):
                raise ValueError(f"{name!r} is not a metric name")
        return names

    @model_validator(mode="after")
    def _something(self) -> MetricsCheck:
        if not self.present and not self.samples:
            raise ValueError("set present (metric names), samples (bounds) or both")
        return self


def verify(check: MetricsCheck, target: Target) -> None:
    for origin in endpoint.origins(check, target):
        answer = endpoint.send(check, target, origin)
        where = endpoint.describe(check, origin)
        evidence = {"response body (start)": answer.text[:4000] + answer.body_note()}
        endpoint.require_status(answer, check.expect_status, where, evidence)
        try:
            exposition = prometheus.parse(answer.text, answer.headers.get("content-type", ""))
        except prometheus.NotExposition as exc:
            raise CheckFailed(f"{where} serves Prometheus text", f"{exc} ({where})", evidence) from None
        _present(check, exposition, where)
        for bounds in check.samples:
            _within(bounds, exposition, where)


def _present(check: MetricsCheck, exposition: prometheus.Exposition, where: str) -> None:
    known = exposition.names()
    absent = [name for name in check.present if name not in known]
    if absent:
        raise CheckFailed(
            f"metrics {', '.join(check.present)}",
            f"no metric {', '.join(absent)} among {len(exposition.families)} families ({where})",
            {"metric families": "\n".join(sorted(exposition.families))},
        )


def _within(bounds: SampleBounds, exposition: prometheus.Exposition, where: str) -> None:
    samples = exposition.samples(bounds.name, bounds.labels)
    expected = f"{bounds.selector()} {bounds.bounds()}"
    shown = "; ".join(str(sample) for sample in samples[:SHOWN_SAMPLES])
    more = f" (+{len(samples) - SHOWN_SAMPLES} more)" if len(samples) > SHOWN_SAMPLES else ""
    evidence = {f"samples of {bounds.selector()}": "\n".join(str(sample) for sample in samples)}
    if not samples and bounds.missing == "fail":
        near = exposition.samples(bounds.name)
        hint = f"; unfiltered: {'; '.join(str(sample) for sample in near[:5])}" if near else ""
        raise CheckFailed(expected, f"no sample {bounds.selector()} ({where}){hint}")
    if bounds.aggregate == "sum" or not samples:
        total = sum(sample.value for sample in samples)
        problem = bounds.outside(total)
        if problem:
            raise CheckFailed(
                f"sum of {expected}",
                f"sum of {bounds.selector()} {problem} ({shown or 'no samples'}{more}; {where})",
                evidence,
            )
        return
    outside = [f"{sample} ({problem})" for sample in samples if (problem := bounds.outside(sample.value))]
    if outside:
        listed = "; ".join(outside[:SHOWN_SAMPLES])
        raise CheckFailed(expected, f"{len(outside)} of {len(samples)} samples: {listed} ({where})", evidence)
