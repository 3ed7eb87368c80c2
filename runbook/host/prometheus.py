"""Prometheus exposition text: parsed with prometheus_client's own parser, samples looked up by name.

Names follow the parser: a counter's family is `http_requests`, its samples are
`http_requests_total` (and `http_requests_created`); a histogram's family has
`_bucket`, `_count` and `_sum` samples. A description may name either the family
or the sample; `samples()` accepts both. Kept apart from any check so that a
Prometheus server source reads the same way: `query()` asks a server's HTTP API
(`/api/v1/query`, an instant vector) and answers the same `Sample`s.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from runbook.host import http_client

OPENMETRICS = "application/openmetrics-text"


class NotExposition(ValueError):
    """The text is not Prometheus (or OpenMetrics) exposition text."""


class QueryFailed(Exception):
    """A Prometheus server gave no answer to a query, or refused it (its own words)."""


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
    counters: frozenset[str] = frozenset()  # the families of TYPE counter

    def names(self) -> set[str]:
        """Family names and sample names: what a description may call a metric. A counter family
        is also `<family>_total`, its samples' name, even before it has any: prom-client prints
        `# TYPE external_requests_total counter` for a labelled counter before its first event,
        and the parser names that family `external_requests`."""
        samples = {sample.name for samples in self.families.values() for sample in samples}
        return set(self.families) | samples | {f"{family}_total" for family in self.counters}

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
        parsed = list(reader(text))
        families = {
            family.name: tuple(Sample(s.name, dict(s.labels), float(s.value)) for s in family.samples)
            for family in parsed
        }
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise NotExposition(f"not Prometheus text: {str(exc)[:160]}") from None
    if not families:
        raise NotExposition("not Prometheus text: no metric families")
    return Exposition(families, frozenset(family.name for family in parsed if family.type == "counter"))


def query(
    server: str,
    promql: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float,
    verify_tls: bool = True,
) -> list[Sample]:
    """The instant vector of `promql` at the server's now; a NaN sample is left out (no rate yet)."""
    url = f"{server.rstrip('/')}/api/v1/query?{urlencode({'query': promql})}"
    try:
        answer = http_client.fetch(
            "GET", url, headers=dict(headers or {}), timeout=timeout, verify_tls=verify_tls
        )
    except (http_client.NoAnswer, http_client.RequestFailed) as exc:
        raise QueryFailed(f"Prometheus {server}: {exc}") from None
    try:
        document: Any = json.loads(answer.body)
    except (ValueError, RecursionError):
        raise QueryFailed(
            f"Prometheus {server} answered {answer.status}, not JSON: {answer.text[:160]!r}"
        ) from None
    if not isinstance(document, dict) or document.get("status") != "success":
        said = document.get("error") if isinstance(document, dict) else None
        raise QueryFailed(f"Prometheus {server} refused {promql!r}: {said or answer.text[:160]}")
    data = document.get("data") or {}
    if data.get("resultType") != "vector":
        raise QueryFailed(f"Prometheus {server}: {promql!r} is a {data.get('resultType')}, not a vector")
    found = []
    for series in data.get("result") or []:
        labels = dict(series.get("metric") or {})
        value = float(series["value"][1])
        if not math.isnan(value):
            found.append(Sample(labels.pop("__name__", ""), labels, value))
    return found


def selector(name: str, matchers: Mapping[str, str]) -> str:
    """'http_requests_total{status=~"5.."}': label regexes quoted as PromQL strings (JSON escapes)."""
    inner = ",".join(f"{label}=~{json.dumps(pattern)}" for label, pattern in matchers.items())
    return f"{name}{{{inner}}}" if inner else name


METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
