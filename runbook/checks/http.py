"""HTTP endpoints (runbook: `curl -s --max-time 5 http://localhost:8000/health`, `GET /ready`).

Status, JSON values at nested paths, headers, body size and text, answer time.
Where the request is sent from (runner, host, inside a container or each container
of a compose service) is `runbook.host.endpoint`'s. A failure shows resolved values
and, with `show:`, the fields that explain it (`status 503 != 200 (...); db=ok
redis=error`); with `upstream:`, a 502/504 says why the service behind the proxy
does not answer (runbook.host.upstream).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import Future
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from runbook.describe.json_conditions import MISSING, JsonCondition, lookup, shown_fields
from runbook.describe.model import ByteSize, CheckBase, regex
from runbook.describe.units import human_bytes
from runbook.errors import CheckFailed
from runbook.host import endpoint, http_client
from runbook.host.docker_host import Container
from runbook.host.endpoint import BODY_EVIDENCE, Endpoint
from runbook.host.target import Target
from runbook.host.upstream import Upstream, diagnose

GATEWAY_ERRORS = {502, 504}


class HttpCheck(CheckBase, Endpoint):
    """An HTTP endpoint: status, JSON fields, headers, body, answer time."""

    kind: ClassVar[str] = "http"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")

    expect_status: list[int] | Literal["any"] = Field(
        default=[200],
        description="the statuses that pass; 'any': every HTTP answer passes (the runbook's "
        "`curl -s --max-time 5 URL || alert` fails only when nothing answers in time)",
    )
    expect_json: dict[str, Any] | None = Field(default=None, description="dotted path -> exact value")
    expect_keys: list[str] = []
    json_conditions: list[JsonCondition] = Field(
        default=[], description="{path: components.db, equals: ok}, {path: total, exists: true}, ..."
    )
    expect_headers: dict[str, str] = Field(default={}, description="header name -> regex searched in it")
    forbid_headers: dict[str, str] = Field(
        default={},
        description="header name -> regex that must not match it (an absent header passes): "
        "a CORS preflight from a foreign origin must not get Access-Control-Allow-Origin",
    )
    body_matches: str | None = Field(default=None, description="regex searched in the body")
    download: bool = Field(
        default=False,
        description="the answer is a whole download (a database backup): runs only with "
        "--allow-downloads or --allow-writes, as it loads the service and its disk",
    )
    max_body_bytes: ByteSize | None = None
    max_seconds: float | None = Field(default=None, gt=0, le=120, description="answer time limit")
    show: list[str] = Field(default=[], description="JSON paths every failure message shows")
    upstream: Upstream | None = Field(
        default=None, description="the service behind a proxy: on 502/504 the failure says why"
    )

    @property
    def measures_time(self) -> bool:
        """An answer-time limit times the answer: run beside other checks, it would time them too."""
        return self.max_seconds is not None

    @property
    def is_download(self) -> bool:
        return self.download

    @field_validator("expect_status", mode="before")
    @classmethod
    def _statuses_or_any(cls, value: Any) -> Any:
        """One message for a wrong value, not one per member of the union."""
        if value == "any" or isinstance(value, list):
            return value
        raise ValueError(f"a list of statuses such as [200], or 'any' (every HTTP answer); not {value!r}")

    @field_validator("body_matches")
    @classmethod
    def _body_regex(cls, value: str | None) -> str | None:
        return None if value is None else regex(value)

    @field_validator("expect_headers", "forbid_headers")
    @classmethod
    def _header_regexes(cls, headers: dict[str, str]) -> dict[str, str]:
        return {name: regex(pattern) for name, pattern in headers.items()}


def verify(check: HttpCheck, target: Target) -> None:
    for origin in endpoint.origins(check, target):
        judge(check, target, origin, shared_answer(check, target, origin))


def shared_answer(check: HttpCheck, target: Target, origin: Container | None) -> http_client.Answer:
    """One GET per run for the checks that ask the same thing (magic-master's four checks of
    /api/health): the service answers the runbook's one curl, not one per aspect. With two runs
    at once, eight requests to its /api/health timed out where two answer. A check that times
    the answer or downloads asks on its own; --wait-ready forgets the answer between rounds."""
    if check.method != "GET" or check.is_download or check.measures_time:
        return endpoint.send(check, target, origin)
    key = (
        "http GET", check.url, check.via, origin.name if origin else None,
        tuple(sorted(check.headers.items())), check.verify_tls, check.timeout,
    )  # fmt: skip
    made: list[Future[http_client.Answer]] = []

    def ask() -> Future[http_client.Answer]:
        made.append(Future())
        return made[0]

    future = target.cached(key, ask)
    if made:  # this check asks; the others with the same question wait for its answer
        try:
            future.set_result(endpoint.send(check, target, origin))
        except BaseException as exc:
            future.set_exception(exc)
    try:
        return future.result()
    except CheckFailed as exc:  # each check raises its own, not one object shared by threads
        raise CheckFailed(exc.expected, exc.found, exc.evidence) from None


def judge(check: HttpCheck, target: Target, origin: Container | None, answer: http_client.Answer) -> None:
    """Every condition of the check on one answer; CheckFailed at the first that fails."""
    where = endpoint.describe(check, origin)
    body = answer.text
    evidence = {"response body": body[:BODY_EVIDENCE] + answer.body_note()}
    document = _json_or_none(body)
    shown = f"; {shown_fields(document, check.show)}" if check.show and document is not None else ""
    if check.expect_status != "any" and answer.status not in check.expect_status:
        wanted = "/".join(map(str, check.expect_status))
        found = f"status {answer.status} != {wanted} ({where}, {answer.seconds:.2f}s){shown}"
        if check.upstream is not None and answer.status in GATEWAY_ERRORS:
            why, more = diagnose(target, check.upstream)
            found += f"; {why}"
            evidence.update(more)
        raise CheckFailed(f"{where} answers {wanted} within {check.timeout:g}s", found, evidence)
    if answer.late:
        raise CheckFailed(
            f"{where} answers within {check.timeout:g}s",
            f"status {answer.status} arrived, but the body did not finish within {check.timeout:g}s "
            f"({len(answer.body)} bytes read)",
            evidence,
        )
    if check.max_seconds is not None and answer.seconds > check.max_seconds:
        raise CheckFailed(
            f"{where} answers within {check.max_seconds:g}s",
            f"answered in {answer.seconds:.2f}s > {check.max_seconds:g}s ({where}){shown}",
            evidence,
            slow=True,
        )
    _headers(check, answer, where)
    _forbidden_headers(check, answer, where)
    _body(check, answer, where, evidence)
    if check.expect_json is None and not check.expect_keys and not check.json_conditions:
        return
    if document is None:
        raise CheckFailed(
            f"{where} answers JSON",
            f"body is not JSON: {body[:120]!r}{answer.body_note()}",
            evidence,
        )
    if check.expect_json is not None or check.expect_keys:
        if not isinstance(document, dict):
            raise CheckFailed(f"{where} answers a JSON object", f"JSON {type(document).__name__}", evidence)
        _expect_json(check, document, where, evidence)
    failures = [failure for condition in check.json_conditions if (failure := condition.failure(document))]
    if failures:
        raise CheckFailed(
            "JSON " + "; ".join(condition.expected() for condition in check.json_conditions),
            f"JSON {'; '.join(failures)} ({where}){shown}",
            evidence,
        )


def _json_or_none(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # 100,000 nested '[' exceed Python's recursion limit
        return None


def _headers(check: HttpCheck, answer: http_client.Answer, where: str) -> None:
    for name, pattern in check.expect_headers.items():
        value = answer.headers.get(name.lower())
        if value is None or not re.search(pattern, value):
            found = "absent" if value is None else repr(value)
            raise CheckFailed(
                f"header {name} matching {pattern!r}",
                f"header {name} {found} does not match {pattern!r} ({where})",
                {"response headers": "\n".join(f"{key}: {text}" for key, text in answer.headers.items())},
            )


def _forbidden_headers(check: HttpCheck, answer: http_client.Answer, where: str) -> None:
    for name, pattern in check.forbid_headers.items():
        value = answer.headers.get(name.lower())
        if value is not None and re.search(pattern, value):
            raise CheckFailed(
                f"no header {name} matching {pattern!r}",
                f"header {name}: {value!r} matches {pattern!r} (status {answer.status}, {where})",
                {"response headers": "\n".join(f"{key}: {text}" for key, text in answer.headers.items())},
            )


def _body(check: HttpCheck, answer: http_client.Answer, where: str, evidence: dict[str, str]) -> None:
    size = len(answer.body)
    if check.max_body_bytes is not None and size > check.max_body_bytes:
        more = " or more" if answer.truncated else ""
        raise CheckFailed(
            f"a body of at most {human_bytes(check.max_body_bytes)}",
            f"body {size} bytes{more} > {check.max_body_bytes} ({where})",
            evidence,
        )
    if check.body_matches is not None and not re.search(check.body_matches, answer.text):
        raise CheckFailed(
            f"a body matching {check.body_matches!r}",
            f"body {answer.text[:120]!r}{answer.body_note()} does not match {check.body_matches!r} ({where})",
            evidence,
        )


def _expect_json(check: HttpCheck, document: dict[str, Any], where: str, evidence: dict[str, str]) -> None:
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
    """The value at a dotted path; None when absent (expect_json/expect_keys read null as absent)."""
    value = lookup(document, dotted)
    return None if value is MISSING else value
