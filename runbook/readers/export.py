"""Prometheus: the run's results as metrics, for node_exporter's textfile collector or a Pushgateway.

Why: dashboards and Alertmanager already watch the hosts; the checklist's verdicts belong
next to them. One gauge per check, `runbook_check_success{system,check,severity}` (1 passed,
0 failed, error or waived; skipped checks are left out: nothing was learnt), plus
`runbook_check_waived`, `runbook_run_failures{markers,severity}`,
`runbook_run_duration_seconds{markers}` and `runbook_last_run_timestamp_seconds{markers}`.

`--metrics-textfile=PATH` writes them with prometheus_client's `write_to_textfile` (a
temporary file renamed into place: node_exporter never reads half a file); give each scope
its own file (runbook-daily.prom, runbook-smoke.prom). `--pushgateway=URL` pushes them with
`push_to_gateway` (job `runbook`, grouped by marker expression), for runs on CI runners
that node_exporter never sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from runbook.host import http_client
from runbook.record import SEVERITIES, CheckRecord
from runbook.secrets import SECRETS

JOB = "runbook"
TIMEOUT_SECONDS = 10.0


def registry_of(
    records: Iterable[CheckRecord], *, markers: str, duration: float, finished: datetime
) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = ("system", "check", "severity")
    success = Gauge("runbook_check_success", "1 when the check passed, 0 when not", labels, registry=registry)
    waived = Gauge("runbook_check_waived", "1 when the check's failure is waived", labels, registry=registry)
    failures = Gauge(
        "runbook_run_failures", "failed checks by severity", ("markers", "severity"), registry=registry
    )
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for record in records:
        if record.outcome == "skipped" or record.kind == "collect":
            continue
        values = [SECRETS.mask(value) for value in (record.system, record.check_id, record.severity or "")]
        success.labels(*values).set(1 if record.outcome == "passed" else 0)
        if record.outcome == "waived":
            waived.labels(*values).set(1)
        if record.failed and record.severity in by_severity:
            by_severity[record.severity] += 1
    for severity, count in by_severity.items():
        failures.labels(markers, severity).set(count)
    Gauge("runbook_run_duration_seconds", "how long the run took", ("markers",), registry=registry).labels(
        markers
    ).set(round(duration, 3))
    last_run = Gauge(
        "runbook_last_run_timestamp_seconds", "when the run finished", ("markers",), registry=registry
    )
    last_run.labels(markers).set(finished.timestamp())
    return registry


def write_textfile(path: str, registry: CollectorRegistry) -> None:
    write_to_textfile(path, registry)


def push(url: str, registry: CollectorRegistry, markers: str) -> None:
    grouping = {"markers": markers}
    push_to_gateway(
        url, job=JOB, registry=registry, grouping_key=grouping, timeout=TIMEOUT_SECONDS, handler=_handler
    )


def _handler(
    url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
) -> Callable[[], None]:
    """prometheus_client's push over runbook.host.http_client: one deadline for the whole
    exchange (urllib's is per read: a gateway trickling a byte every 2 s held the run for
    minutes) and a capped answer."""

    def push() -> None:
        try:
            answer = http_client.fetch(
                method,
                url,
                headers=dict(headers),
                content=data,
                timeout=timeout or TIMEOUT_SECONDS,
                cap=64 << 10,
            )
        except (http_client.NoAnswer, http_client.RequestFailed) as exc:
            raise OSError(f"Pushgateway {url}: {exc}") from None
        if not 200 <= answer.status < 300:
            raise OSError(f"Pushgateway {url}: HTTP {answer.status}: {answer.text[:200]}")

    return push
