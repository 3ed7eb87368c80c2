"""HTTP endpoints (runbook: `curl -s --max-time 5 http://localhost:8000/health`).

From the runner the request goes through `runbook.web` (httpx, one total
deadline, a capped body); on the host (or inside a container, for ports that are
not published) it goes through curl with --max-time, the runbook's own tool.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from runbook import docker_host, web
from runbook.hosts import Target
from runbook.model import CheckBase, ContainerName
from runbook.outcome import CheckError, CheckFailed

BODY_EVIDENCE = 4000
CURL_TRAILER = "\n__runbook_http__ %{http_code} %{time_total}"


class HttpCheck(CheckBase):
    """An HTTP endpoint: status, JSON fields, answer time."""

    kind: ClassVar[str] = "http"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=4096)
    method: Literal["GET", "HEAD", "POST"] = "GET"
    via: Literal["runner", "host"] = Field(
        default="runner", description="runner: from this machine (httpx); host: curl on the host"
    )
    container: ContainerName | None = Field(default=None, description="curl inside this container")
    timeout: float = Field(default=5.0, gt=0, le=120)
    expect_status: list[int] = [200]
    expect_json: dict[str, Any] | None = None
    expect_keys: list[str] = []
    headers: dict[str, str] = {}
    verify_tls: bool = True

    @model_validator(mode="after")
    def _where(self) -> HttpCheck:
        if self.container and self.via == "runner":
            object.__setattr__(self, "via", "host")
        return self


def verify(check: HttpCheck, target: Target) -> None:
    answer = _via_runner(check) if check.via == "runner" else _via_host(check, target)
    body = answer.text
    evidence = {"response body": body[:BODY_EVIDENCE] + answer.body_note()}
    where = f"{check.method} {check.url}"
    if answer.status not in check.expect_status:
        wanted = "/".join(map(str, check.expect_status))
        raise CheckFailed(
            f"{where} answers {wanted} within {check.timeout:g}s",
            f"status {answer.status} != {wanted} ({where}, {answer.seconds:.2f}s)",
            evidence,
        )
    if answer.late:
        raise CheckFailed(
            f"{where} answers within {check.timeout:g}s",
            f"status {answer.status} arrived, but the body did not finish within {check.timeout:g}s "
            f"({len(answer.body)} bytes read)",
            evidence,
        )
    if check.expect_json is None and not check.expect_keys:
        return
    try:
        document = json.loads(body)
    except ValueError:
        raise CheckFailed(
            f"{where} answers JSON",
            f"body is not JSON: {body[:120]!r}{answer.body_note()}",
            evidence,
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


def _via_runner(check: HttpCheck) -> web.Answer:
    where = f"{check.method} {check.url}"
    try:
        return web.fetch(
            check.method, check.url, headers=check.headers, timeout=check.timeout, verify_tls=check.verify_tls
        )
    except web.NoAnswer:
        raise CheckFailed(
            f"{where} answers within {check.timeout:g}s", f"no answer within {check.timeout:g}s ({where})"
        ) from None
    except web.RequestFailed as exc:
        raise CheckFailed(f"{where} answers", f"{where} failed: {exc}") from None


def _via_host(check: HttpCheck, target: Target) -> web.Answer:
    curl = ["curl", "-sS", "-X", check.method, "--max-time", f"{check.timeout:g}", "-w", CURL_TRAILER]
    if not check.verify_tls:
        curl.append("-k")
    for name, value in check.headers.items():
        curl += ["-H", f"{name}: {value}"]
    curl.append(check.url)
    template = " ".join("%s" for _ in curl)
    if check.container:
        result = docker_host.exec_in(target, check.container, template, *curl, timeout=check.timeout + 10)
    else:
        result = target.run(template, *curl, timeout=check.timeout + 10)
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
    return web.Answer(status=int(status), body=body.encode("utf-8", errors="replace"), seconds=float(seconds))
