"""Prometheus exposition text: parsed with prometheus_client's own parser, samples looked up by name.

Names follow the parser: a counter's family is `http_requests`, its samples are
`http_requests_total` (and `http_requests_created`); a histogram's family has
`_bucket`, `_count` and `_sum` samples. A description may name either the family
or the sample; `samples()` accepts both. Kept apart from any check so that a
Prometheus server source can read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

OPENMETRICS = "application/openmetrics-text"


class NotExposition(ValueError):
    """The text is not Prometheus (or OpenMetrics) exposition text."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float

    def __str__(self) -> str:
        """'http_requests_total{method="GET",status="500"} = 12'."""
        labels = ",".join(f'{key}="{value}"' for key, value in sorted(self.labels.items()))
        return f"{self.name}{{{labels}}} = {self.value:g}" if labels else f"{self.name} = {self.value:g}"


@dataclass(frozen=True)
class Exposition:
    """Every family of one scrape: family name -> its samples."""

    families: Mapping[str, tuple[Sample, ...]]

    def names(self) -> set[str]:
        """Family names and sample names: what a description may call a metric."""
        return set(self.families) | {sample.name for samples in self.families.values() for sample in samples}

    def samples(self, name: str, matchers: Mapping[str, str] | None = None) -> list[Sample]:
        """Samples called `name` (a family's name means its value samples: `_total` for counters),
        whose labels fully match each regex of `matchers` (as Prometheus' =~)."""
        found = []
        for family, samples in self.families.items():
            for sample in samples:
                if sample.name == name or (family == name and sample.name in {name, f"{name}_total"}):
                    found.append(sample)
        return [sample for sample in found if _matches(sample, matchers or {})]

    def size(self) -> int:
        return sum(len(samples) for samples in self.families.values())


def _matches(sample: Sample, matchers: Mapping[str, str]) -> bool:
    return all(re.fullmatch(pattern, sample.labels.get(label, "")) for label, pattern in matchers.items())


def parse(text: str, content_type: str = "") -> Exposition:
    """The families of exposition text; NotExposition says why it is not."""
    from prometheus_client import openmetrics, parser

    reader = (
        openmetrics.parser.text_string_to_metric_families
        if content_type.startswith(OPENMETRICS)
        else parser.text_string_to_metric_families
    )
    try:
        families = {
            family.name: tuple(Sample(s.name, dict(s.labels), float(s.value)) for s in family.samples)
            for family in reader(text)
        }
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise NotExposition(f"not Prometheus text: {str(exc)[:160]}") from None
    if not families:
        raise NotExposition("not Prometheus text: no metric families")
    return Exposition(families)
