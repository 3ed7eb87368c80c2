"""Metric rates and growth (Loyalty API alerting: 5xx per minute, slow requests per minute,
`loyalty_outbox_dead_total` growth over the window, `loyalty_outbox_pending` not growing,
`external_requests_total` errors and 429s by provider not rising).

A selector (metric name, label regexes), an optional `by` grouping (each group judged,
the failure names the one that rose), a window and one limit: per minute or a growth.
Two sources. With `prometheus: {url: ...}` the server computes it, as a team with
Prometheus alerts: `sum by (provider) (increase(metric{...}[10m]))` (`delta` for a gauge)
over its HTTP API. Without one, the suite scrapes the endpoint itself (`scrape:`, as the
`metrics` kind does) and compares with the samples earlier runs stored (runbook.host.samples):
the first run records a baseline and passes saying so; counters that went down were reset
(the process restarted) and count from zero, as Prometheus counts them.

A labelled counter has no series until its first event (prom-client, prometheus_client):
`missing: zero` reads a metric with no series as no growth, where `missing: fail` (the
default) calls it a typo. It still fails when the source does: the endpoint does not answer
Prometheus text, the server refuses the query, or (with a `job` label) the server has no target
of that job up.

A rate of the service's slow requests counts the suite's own requests too: `own_requests:`
(the service's URL and its slow threshold) leaves out those the runner sent in the window
and saw slower than the threshold (runbook.host.own_traffic), and says how many it left out.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import CheckBase, Duration, HttpUrl, Model, format_duration, regex
from runbook.describe.thresholds import Threshold, resolved
from runbook.errors import CheckError, CheckFailed, CheckPassed
from runbook.host import endpoint, own_traffic, prometheus
from runbook.host.endpoint import Endpoint, Headers
from runbook.host.prometheus import METRIC_NAME
from runbook.host.samples import STORE, Snapshot
from runbook.host.target import Target

LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200)]
SHOWN_GROUPS = 5


class PrometheusServer(Model):
    """A Prometheus server's HTTP API (`http://prometheus:9090/`), asked from the runner."""

    url: HttpUrl
    headers: Headers = Field(default={}, description='e.g. {Authorization: "Bearer ${PROM_TOKEN}"}')
    timeout: float = Field(default=10.0, gt=0, le=120)
    verify_tls: bool = True


class Scrape(Endpoint):
    """The app's own /metrics, scraped as the `metrics` kind does (runner, host or container)."""

    expect_status: list[int] = [200]


class OwnRequests(Model):
    """Where the suite's own requests count in the metric: the service's URL and what it calls slow."""

    url: HttpUrl = Field(description="{base_url}")
    slower_than_ms: Threshold = Field(description="e.g. ${ALERT_HTTP_SLOW_THRESHOLD_MS}")


class RatesCheck(CheckBase):
    """How fast a counter rises (or a gauge grows) over a window, against a limit."""

    kind: ClassVar[str] = "rates"
    aspects: ClassVar[tuple[str, ...]] = ("max_per_minute", "max_increase")

    metric: str = Field(pattern=METRIC_NAME.pattern, max_length=200, description="http_requests_total")
    labels: dict[LabelName, str] = Field(default={}, description="label -> regex, full match (=~)")
    by: list[LabelName] = Field(default=[], description="judge each group: [provider]; default: the sum")
    type: Literal["counter", "gauge"] = Field(
        default="counter", description="counter: increase, resets count from zero; gauge: delta"
    )
    window: Duration = Field(default=600.0, description="10m, as increase(...[10m])")
    max_per_minute: Threshold | None = Field(default=None, description="e.g. ${ALERT_HTTP_5XX_PER_MIN}")
    max_increase: Threshold | None = Field(
        default=None, description="growth over the window: ${ALERT_OUTBOX_DEAD_DELTA}; 0: not growing"
    )
    prometheus: PrometheusServer | None = Field(default=None, description="ask this server (PromQL)")
    scrape: Scrape | None = Field(default=None, description="scrape this endpoint, compare with earlier runs")
    own_requests: OwnRequests | None = Field(
        default=None, description="leave out the suite's own requests to this URL slower than this"
    )
    missing: Literal["fail", "zero"] = Field(
        default="fail",
        description="no series of the metric: a failure (a typo), or no growth (a labelled counter "
        "appears at its first event); the source not answering, or its `job` not up, still fails",
    )

    @field_validator("labels")
    @classmethod
    def _regexes(cls, labels: dict[str, str]) -> dict[str, str]:
        return {label: regex(pattern) for label, pattern in labels.items()}

    @field_validator("max_per_minute", "max_increase")
    @classmethod
    def _not_negative(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float) and value < 0:
            raise ValueError("a limit is 0 or more")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RatesCheck:
        if (self.prometheus is None) == (self.scrape is None):
            raise ValueError("set prometheus (a server's URL) or scrape (the app's /metrics), one of them")
        if self.window < 60:
            raise ValueError("window: at least 1m")
        if self.own_requests is not None and (self.by or self.type != "counter"):
            raise ValueError("own_requests: only for a counter summed over all series (no `by`)")
        return self

    def series(self) -> str:
        """'http_requests_total{status=~"5.."}'."""
        return prometheus.selector(self.metric, self.labels)


class _NoSeries(Exception):
    """The metric has no series at the source and `missing: zero` reads that as no growth."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def verify(check: RatesCheck, target: Target) -> None:
    written = check.max_per_minute if check.max_per_minute is not None else check.max_increase
    assert written is not None  # one of the two aspects is set
    limit = resolved(written)
    try:
        if check.prometheus is not None:
            growth, span, source = _from_prometheus(check, check.prometheus)
        else:
            growth, span, source = _from_scrapes(check, target)
    except _NoSeries as absent:
        raise CheckPassed(
            f"no series {check.metric} at {absent.where} yet (missing: zero: a counter appears at its "
            f"first event): no growth over {format_duration(round(check.window))}"
        ) from None
    growth, note = _without_own_requests(check, growth, span)
    _judge(check, limit, growth, span, source + note)


def _without_own_requests(
    check: RatesCheck, growth: dict[str, float], span: float
) -> tuple[dict[str, float], str]:
    """The growth less the suite's own requests slower than the service's threshold in the window,
    and a note saying how many were left out ('' when none)."""
    if check.own_requests is None:
        return growth, ""
    threshold_ms = resolved(check.own_requests.slower_than_ms)
    own = own_traffic.slower_than(check.own_requests.url, threshold_ms / 1000, since=time.time() - span)
    if not own:
        return growth, ""
    left = {group: max(0.0, value - own) for group, value in growth.items()}
    return left, f"; left out: {own} of this suite's own requests over {threshold_ms:g} ms"


def _judge(check: RatesCheck, limit: float, growth: Mapping[str, float], span: float, source: str) -> None:
    """Each group's growth over `span` seconds against the limit; CheckFailed naming the groups over it."""
    per_minute = check.max_per_minute is not None
    unit = "/min" if per_minute else ""
    values = {group: value / (span / 60) if per_minute else value for group, value in growth.items()}
    what = check.series() + (f" by {', '.join(check.by)}" if check.by else "")
    verb = "rises" if per_minute else "grows"
    expected = f"{what} {verb} at most {limit:g}{unit} over {format_duration(round(span))} ({source})"
    broken = sorted(group for group, value in values.items() if not math.isfinite(value))
    if broken:  # NaN > limit is False: a NaN rate would pass any limit
        named = ", ".join(_named(group).rstrip(": ") or "(all)" for group in broken)
        raise CheckFailed(expected, f"{what}: not a number for {named} ({source})")
    over = sorted(((value, group) for group, value in values.items() if value > limit), reverse=True)
    if not over:
        return
    shown = "; ".join(
        f"{_named(group)}{_number(value, limit)}{unit} > {limit:g}{unit}"
        for value, group in over[:SHOWN_GROUPS]
    )
    more = f" (+{len(over) - SHOWN_GROUPS} more)" if len(over) > SHOWN_GROUPS else ""
    rose = "rose" if per_minute else "grew by"
    rest = sorted(values.items(), key=lambda item: -item[1])
    raise CheckFailed(
        expected,
        f"{what} {rose} {shown}{more} over {format_duration(round(span))} ({source})",
        {"each group": "\n".join(f"{group or '(all)'} {value:g}{unit}" for group, value in rest)},
    )


def _number(value: float, limit: float | None = None) -> str:
    """'7.5', '0.333', '40200': three significant digits, never an exponent; more where three
    would print a number no greater than the limit ('rose 1/min > 1/min' said nothing)."""
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    digits = 3
    while limit is not None and float(text) <= limit < value and digits < 17:
        digits += 1
        text = f"{value:.{digits}g}"
    return text


def _named(group: str) -> str:
    return f"{group}: " if group else ""


def _group(labels: Mapping[str, str], by: Sequence[str]) -> str:
    """'provider=telegram' (the `by` labels of a series), '' when not grouped."""
    return ",".join(f"{label}={labels.get(label, '')}" for label in by)


# -- a Prometheus server ---------------------------------------------------------------------


def promql(check: RatesCheck) -> str:
    """`sum by (provider) (increase(external_requests_total{result=~"error"}[10m]))`."""
    function = "increase" if check.type == "counter" else "delta"
    grouping = f" by ({', '.join(check.by)})" if check.by else ""
    return f"sum{grouping} ({function}({check.series()}[{int(check.window)}s]))"


def _from_prometheus(check: RatesCheck, server: PrometheusServer) -> tuple[dict[str, float], float, str]:
    source = f"Prometheus {server.url}"

    def ask(query: str) -> list[prometheus.Sample]:
        return prometheus.query(
            server.url, query, headers=server.headers, timeout=server.timeout, verify_tls=server.verify_tls
        )

    # The metric as the service exports it: with the check's `job` (one service of many on the
    # server), without the other labels (no 5xx at all is no growth, not a typo).
    job = {"job": check.labels["job"]} if "job" in check.labels else {}
    exported = prometheus.selector(check.metric, job)
    try:
        samples = ask(promql(check))
        if not samples and not ask(f"count({exported})"):
            if check.missing == "fail":
                raise CheckFailed(
                    f"{check.series()} known to {source}",
                    f"{source} has no series {exported} at all (a typo, or it does not scrape the app)",
                )
            if job:
                _job_up(check, ask, prometheus.selector("up", job), source)
            raise _NoSeries(source)
    except prometheus.QueryFailed as exc:
        raise CheckError(str(exc)) from None
    growth = {_group(sample.labels, check.by): sample.value for sample in samples}
    return growth or {"": 0.0}, check.window, source


def _job_up(check: RatesCheck, ask: Callable[[str], list[prometheus.Sample]], up: str, source: str) -> None:
    """A metric with no series is no growth only while the server scrapes the service: its
    `up` series exist and one at least is 1."""
    targets = ask(up)
    if not targets:
        raise CheckFailed(
            f"{source} scrapes {up}",
            f"{source} has no series {check.metric} and no target {up} (it does not scrape the app)",
        )
    if not any(sample.value == 1 for sample in targets):
        raise CheckFailed(
            f"{source} scrapes {up}",
            f"{source} has no series {check.metric} and {up} is "
            f"{', '.join(f'{sample.value:g}' for sample in targets)} (the last scrape failed)",
        )


# -- the suite's own samples -----------------------------------------------------------------


def _from_scrapes(check: RatesCheck, target: Target) -> tuple[dict[str, float], float, str]:
    scrape = check.scrape
    assert scrape is not None
    values: dict[str, float] = {}
    unreadable: list[str] = []
    known = False
    now = time.time()
    for origin in endpoint.origins(scrape, target):
        answer = endpoint.send(scrape, target, origin)
        where = endpoint.describe(scrape, origin)
        endpoint.require_status(answer, scrape.expect_status, where)
        try:
            exposition = prometheus.parse(answer.text, answer.headers.get("content-type", ""))
        except prometheus.NotExposition as exc:
            raise CheckFailed(f"{where} serves Prometheus text", f"{exc} ({where})") from None
        known = known or bool(exposition.samples(check.metric))
        for sample in exposition.samples(check.metric, check.labels):
            if not math.isfinite(sample.value):  # never stored: it would poison every later rate
                unreadable.append(f"{sample} ({where})")
                continue
            labels = {"instance": str(origin) if origin else scrape.url, **sample.labels}
            values[json.dumps(sorted(labels.items()))] = sample.value
    where = endpoint.describe(scrape, None)
    if not known and check.missing == "fail":
        raise CheckFailed(f"{check.series()} served by {where}", f"no metric {check.metric} at {where}")
    if unreadable:
        raise CheckFailed(
            f"{check.series()} served as numbers", f"not a number: {'; '.join(unreadable[:SHOWN_GROUPS])}"
        )
    source_key = f"{check.id} {target.display} {scrape.url} {check.series()}"
    history = STORE.record(source_key, Snapshot(now, values), check.window)
    if len(history) < 2:
        raise CheckPassed(
            f"baseline recorded: {len(values)} series of {check.series()} from {where}; "
            "the next run computes the rate"
        )
    growth: dict[str, float] = defaultdict(float)
    for key, value in _growth(history, check.type).items():
        growth[_group(dict(json.loads(key)), check.by)] += value
    if not known and not any(growth.values()):  # missing: zero, and no series earlier in the window
        raise _NoSeries(where)  # stored empty: a series born by the next run counts from 0
    span = history[-1].time - history[0].time
    return dict(growth) or {"": 0.0}, span, f"samples of this suite, {where}"


def _growth(history: Sequence[Snapshot], kind: str) -> dict[str, float]:
    """Per series: a counter's increase over the history (a drop is a restart: it counts from
    zero, as Prometheus' increase()), or a gauge's last value minus its first."""
    first, last = history[0], history[-1]
    if kind == "gauge":
        return {key: value - first.values.get(key, 0.0) for key, value in last.values.items()}
    growth: dict[str, float] = defaultdict(float)
    for before, after in pairwise(history):
        for key, value in after.values.items():
            previous = before.values.get(key, 0.0)  # a series born since: it started at zero
            growth[key] += value - previous if value >= previous else value
    return dict(growth)
