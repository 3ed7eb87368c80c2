"""Load sanity (runbook: `tools/perf_sanity.py --runs 200 --concurrency 20`).

N GET requests at concurrency C against named read-only endpoints, from the
runner through one httpx client (runbook.host.http_client.fetch_many): the error rate and
the 95th percentile of the answer time within limits. Bounded in count (2000),
concurrency (50) and total time (`deadline`), so a slow server ends the check,
never the run; p50/p95/max are in the message and per URL in the evidence; a p95 over
its limit is measured once more before it is red. Once more
requests have failed than max_error_percent allows, the verdict is known: the rest are not
sent, so a service that is down costs one round of timeouts, not the whole load.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import ClassVar

from pydantic import Field, field_validator

from runbook.describe.model import CheckBase, HttpUrl
from runbook.errors import CheckFailed
from runbook.host import http_client
from runbook.host.endpoint import valid_headers
from runbook.host.target import Target

SHOWN_ERRORS = 5


class LoadCheck(CheckBase):
    """N GETs at concurrency C: error rate and p95 answer time within limits."""

    kind: ClassVar[str] = "load"
    default_markers: ClassVar[tuple[str, ...]] = ("smoke",)
    runs_last: ClassVar[bool] = True
    timed: ClassVar[bool] = True

    urls: list[HttpUrl] = Field(min_length=1, max_length=20, description="read-only endpoints, asked in turn")
    requests: int = Field(default=200, ge=1, le=2000)
    concurrency: int = Field(default=20, ge=1, le=50)
    timeout: float = Field(default=5.0, gt=0, le=60, description="per request")
    deadline: float = Field(default=60.0, gt=0, le=300, description="for all the requests together")
    headers: dict[str, str] = {}
    verify_tls: bool = True
    expect_status: list[int] = [200]
    max_error_percent: float = Field(default=0.0, ge=0, le=100)
    max_p95_ms: float | None = Field(default=None, gt=0)

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return valid_headers(headers)


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value at or above `share` of the values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency(seconds: list[float]) -> str:
    """'p50 120ms, p95 812ms, max 1302ms'."""
    if not seconds:
        return "no answers"
    p50, p95, top = (percentile(seconds, 0.5), percentile(seconds, 0.95), max(seconds))
    return f"p50 {p50 * 1000:.0f}ms, p95 {p95 * 1000:.0f}ms, max {top * 1000:.0f}ms"


def errors_allowed(check: LoadCheck) -> int:
    """How many of the requests may fail within max_error_percent; one more decides the verdict."""
    return math.floor(check.max_error_percent * check.requests / 100 + 1e-9)


def verify(check: LoadCheck, target: Target) -> None:
    urls = [check.urls[index % len(check.urls)] for index in range(check.requests)]
    started = time.monotonic()
    results = http_client.fetch_many(
        urls,
        headers=check.headers,
        timeout=check.timeout,
        total=check.deadline,
        concurrency=check.concurrency,
        verify_tls=check.verify_tls,
        is_error=lambda result: (
            not isinstance(result, http_client.Answer) or result.status not in check.expect_status
        ),
        errors_allowed=errors_allowed(check),
    )
    took = time.monotonic() - started
    not_sent = sum(1 for result in results if result == http_client.STOPPED)
    errors: Counter[str] = Counter()
    seconds: list[float] = []
    per_url: dict[str, list[float]] = {url: [] for url in check.urls}
    failed_per_url: Counter[str] = Counter()
    for url, result in zip(urls, results, strict=True):
        if result == http_client.STOPPED:
            continue
        if isinstance(result, http_client.Answer):
            seconds.append(result.seconds)
            per_url[url].append(result.seconds)
            if result.status in check.expect_status:
                continue
            errors[f"status {result.status}"] += 1
        else:
            errors[result] += 1
        failed_per_url[url] += 1
    failed = sum(errors.values())
    percent = 100.0 * failed / check.requests
    summary = f"{latency(seconds)}; errors {failed}/{check.requests}"
    answered = check.requests - not_sent
    sent = f"{answered} of {check.requests}" if not_sent else f"{check.requests}"
    where = f"{sent} GET at concurrency {check.concurrency} in {took:.1f}s"
    evidence = {
        "latency": f"{latency(seconds)} over {len(seconds)} answers",
        "per URL": "\n".join(
            f"{url}: {len(times)} answers, {latency(times)}, {failed_per_url[url]} errors"
            for url, times in per_url.items()
        ),
    }
    if errors:
        evidence["errors"] = "\n".join(f"{count} x {what}" for what, count in errors.most_common())
    if percent > check.max_error_percent:
        kinds = ", ".join(f"{what} x{count}" for what, count in errors.most_common(SHOWN_ERRORS))
        share = f"errors {failed}/{check.requests} = {percent:.1f}% > {check.max_error_percent:g}%"
        if not_sent:
            share = (
                f"errors {failed} of the first {answered} already exceed {check.max_error_percent:g}% "
                f"of {check.requests} ({errors_allowed(check)} allowed)"
            )
        raise CheckFailed(
            f"at most {check.max_error_percent:g}% errors",
            f"{where}: {share} ({kinds}); {latency(seconds)}",
            evidence,
            timing=bool(errors) and all(what.startswith("no answer") for what in errors),
        )
    if check.max_p95_ms is not None and seconds:
        p95 = percentile(seconds, 0.95) * 1000
        if p95 > check.max_p95_ms:
            raise CheckFailed(
                f"p95 at most {check.max_p95_ms:g}ms",
                f"{where}: p95 {p95:.0f}ms > {check.max_p95_ms:g}ms ({summary})",
                evidence,
                # one burst over the limit may be a busy moment (a web just started, warming
                # its workers): slow twice is red (runbook.run.verify)
                slow=True,
            )
