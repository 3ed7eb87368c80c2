"""An endpoint that must refuse strangers and open to whom it should (runbook: "`/metrics`:
METRICS_ALLOW_PUBLIC=0 -- localhost only; or METRICS_API_KEY with the `X-API-KEY` header").

The stranger's request (no credentials, from the runner: not localhost) must be
refused with 401/403/404. A refusal alone could be a broken or missing route, so
`granted:` says how the same endpoint must open: with a key in a header (a secret
from the environment), or from where it is allowed (`service: web` asks from
inside the container, i.e. from localhost), optionally serving Prometheus text.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from runbook.describe.model import CheckBase, ContainerName, HttpUrl, InContainer
from runbook.errors import CheckFailed
from runbook.host import endpoint, http_client, prometheus
from runbook.host.endpoint import Endpoint, valid_headers
from runbook.host.target import Target

BODY_EVIDENCE = 2000


class Granted(InContainer):
    """How the endpoint must open: unset fields are the check's own."""

    url: HttpUrl | None = None
    via: Literal["runner", "host"] | None = None
    container: ContainerName | None = None
    headers: dict[str, str] = Field(default={}, description='credentials: {X-API-KEY: "${METRICS_API_KEY}"}')
    status: list[int] = [200]
    prometheus: bool = Field(default=False, description="the answer must be Prometheus exposition text")

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return valid_headers(headers)


class AccessCheck(CheckBase, Endpoint):
    """A request without credentials is refused; the granted request opens it."""

    kind: ClassVar[str] = "access"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke")

    refused_status: list[int] = [401, 403, 404]
    granted: Granted | None = None


def verify(check: AccessCheck, target: Target) -> None:
    refused = "/".join(map(str, check.refused_status))
    for origin in endpoint.origins(check, target):
        answer = endpoint.send(check, target, origin)
        if answer.status not in check.refused_status:
            where = endpoint.describe(check, origin)
            # a 5xx is the endpoint failing (web down behind nginx), not the endpoint open
            said = (
                "the endpoint fails: whether it refuses strangers cannot be judged"
                if answer.status >= 500
                else f"open to anyone who reaches it{_what(answer)}"
            )
            raise CheckFailed(
                f"{where} without credentials is refused ({refused})",
                f"{where} answered {answer.status} without credentials (expected {refused}): {said}",
                {"response body (start)": answer.text[:BODY_EVIDENCE] + answer.body_note()},
            )
    if check.granted is not None:
        _granted(check, check.granted, target)


def _granted(check: AccessCheck, granted: Granted, target: Target) -> None:
    opened = granted_endpoint(check, granted)
    names = ", ".join(opened.headers) or "no credentials"
    for origin in endpoint.origins(opened, target):
        answer = endpoint.send(opened, target, origin)
        where = f"{endpoint.describe(opened, origin)} with {names}"
        evidence = {"response body (start)": answer.text[:BODY_EVIDENCE] + answer.body_note()}
        endpoint.require_status(answer, granted.status, where, evidence)
        if granted.prometheus:
            try:
                prometheus.parse(answer.text, answer.headers.get("content-type", ""))
            except prometheus.NotExposition as exc:
                raise CheckFailed(
                    f"{where} serves Prometheus text", f"answered {answer.status}, {exc} ({where})", evidence
                ) from None


def granted_endpoint(check: AccessCheck, granted: Granted) -> Endpoint:
    """The check's endpoint with what `granted` changes: URL, where from, more headers."""
    fields: dict[str, Any] = {name: getattr(check, name) for name in Endpoint.model_fields}
    fields["headers"] = {**check.headers, **granted.headers}
    if granted.url:
        fields["url"] = granted.url
    if granted.via:
        fields["via"] = granted.via
    if granted.container or granted.service:
        fields.update(container=granted.container, service=granted.service, project=granted.project)
    return Endpoint.model_validate(fields)


def _what(answer: http_client.Answer) -> str:
    """' (Prometheus text, 14 metric families)' when the open endpoint serves metrics."""
    try:
        exposition = prometheus.parse(answer.text, answer.headers.get("content-type", ""))
    except prometheus.NotExposition:
        return ""
    return f" (Prometheus text, {len(exposition.families)} metric families)"
