"""HTTP endpoints (runbook: `curl -s --max-time 5 http://localhost:8000/health`).

From the runner the request goes through httpx with one total deadline; on the
host (or inside a container, for ports that are not published) it goes through
curl with --max-time, the runbook's own tool.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from runbook.hosts import Target
from runbook.outcome import CheckError, CheckFailed
from runbook.schema import HttpCheck

from .containers import require_running

BODY_EVIDENCE = 4000
CURL_TRAILER = "\n__runbook_http__ %{http_code} %{time_total}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    seconds: float


def verify(check: HttpCheck, target: Target) -> None:
    answer = _via_runner(check) if check.via == "runner" else _via_host(check, target)
    evidence = {"response body": answer.body[:BODY_EVIDENCE]}
    where = f"{check.method} {check.url}"
    if answer.status not in check.expect_status:
        wanted = "/".join(map(str, check.expect_status))
        raise CheckFailed(
            f"{where} answers {wanted} within {check.timeout:g}s",
            f"status {answer.status} != {wanted} ({where}, {answer.seconds:.2f}s)",
            evidence,
        )
    if check.expect_json is None and not check.expect_keys:
        return
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise CheckFailed(
            f"{where} answers JSON", f"body is not JSON: {answer.body[:120]!r}", evidence
        ) from None
    if not isinstance(document, dict):
        raise CheckFailed(f"{where} answers a JSON object", f"JSON {type(document).__name__}", evidence)
    for key, wanted_value in (check.expect_json or {}).items():
        value = _lookup(document, key)
        if value != wanted_value:
            raise CheckFailed(
                f"JSON {key} == {wanted_value!r}",
                f"JSON {key} {value!r} != {wanted_value!r} ({where})",
                evidence,
            )
    absent = [key for key in check.expect_keys if _lookup(document, key) is None]
    if absent:
        raise CheckFailed(
            f"JSON keys {', '.join(check.expect_keys)}",
            f"JSON lacks {', '.join(absent)} ({where})",
            evidence,
        )


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _via_runner(check: HttpCheck) -> Answer:
    started = time.monotonic()
    try:
        with httpx.Client(timeout=httpx.Timeout(check.timeout), verify=check.verify_tls) as client:
            status, body = _request_within(client, check)
    except httpx.TimeoutException:
        raise CheckFailed(
            f"{check.method} {check.url} answers within {check.timeout:g}s",
            f"no answer within {check.timeout:g}s ({check.method} {check.url})",
        ) from None
    except httpx.HTTPError as exc:
        raise CheckFailed(
            f"{check.method} {check.url} answers",
            f"{check.method} {check.url} failed: {_reason(exc)}",
        ) from None
    return Answer(status, body, time.monotonic() - started)


def _request_within(client: httpx.Client, check: HttpCheck) -> tuple[int, str]:
    """httpx's timeouts are per read; a server that trickles bytes must not exceed the total."""
    deadline = time.monotonic() + check.timeout
    with client.stream(check.method, check.url, headers=check.headers) as response:
        chunks = []
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("total deadline passed", request=response.request)
        body = b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
    return response.status_code, body


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None and str(cause):
        text = str(cause)
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {text}"[:300]


def _via_host(check: HttpCheck, target: Target) -> Answer:
    curl = ["curl", "-sS", "-X", check.method, "--max-time", f"{check.timeout:g}", "-w", CURL_TRAILER]
    if not check.verify_tls:
        curl.append("-k")
    for name, value in check.headers.items():
        curl += ["-H", f"{name}: {value}"]
    curl.append(check.url)
    prefix = ""
    if check.container:
        require_running(target, check.container)
        prefix = "docker exec %s "
        args = [check.container, *curl]
    else:
        args = curl
    command = prefix + " ".join("%s" for _ in curl)
    result = target.run(command, *args, timeout=check.timeout + 10)
    body, marker, trailer = result.stdout.rpartition("\n__runbook_http__ ")
    inside = f" (inside {check.container})" if check.container else ""
    if result.rc == 28:
        raise CheckFailed(
            f"{check.method} {check.url} answers within {check.timeout:g}s",
            f"no answer within {check.timeout:g}s ({check.method} {check.url}{inside})",
        )
    if result.rc != 0 or not marker:
        said = result.stderr.strip()[:300] or f"curl exit {result.rc}"
        if result.rc in {6, 7, 35, 52, 56, 60}:
            raise CheckFailed(f"{check.method} {check.url} answers", f"{said}{inside}")
        raise CheckError(f"curl {check.url}{inside}: {said}")
    status, seconds = trailer.split()
    return Answer(int(status), body, float(seconds))
