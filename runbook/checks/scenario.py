"""An HTTP scenario (the Loyalty API's smoke-integrations.sh): a few requests in order, later
ones using values captured from earlier answers, each within its own time limit.

Steps are sent from the runner (runbook.host.http_client: one total deadline, a capped body) and
judged with the http kind's vocabulary: status, JSON conditions (runbook.describe.json_conditions),
answer time (`max_ms`, a number or `${SMOKE_MAX_MS_CODE}`). `capture: {customer_id:
customer.id}` keeps a value; `{{customer_id}}` puts it into a later step's URL path
(quoted as one path segment), a header value or a JSON body, and nowhere else: nothing of
an answer is ever executed. A step that changes data (`mutates: true`) runs only with
--allow-writes, `allow_writes: true` in the description, or with its own switch (`allow_mutations_env:
SMOKE_ALLOW_MUTATIONS` set to 1); otherwise it is skipped, and so are the steps that
need what it would have captured, and the check passes saying which were skipped.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from runbook.describe.json_conditions import MISSING, JsonCondition, lookup
from runbook.describe.model import CheckBase, Model
from runbook.describe.thresholds import Threshold, resolved
from runbook.errors import CheckFailed, CheckPassed
from runbook.host import endpoint
from runbook.host.endpoint import BODY_EVIDENCE, Endpoint, Headers, valid_headers
from runbook.host.target import Target
from runbook.secrets import SECRET_NAME, SECRETS

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SWITCHED_ON = {"1", "true", "yes", "on"}
# Characters a captured value may have: an id or a token, never a document. A 100 kB value went
# into a URL and a header of the next request, and into the secret masker's patterns.
MAX_CAPTURED = 4096


class Step(Model):
    """One request of the scenario and what its answer must be."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1, max_length=4096, description="absolute, or a path under base_url")
    headers: Headers = {}
    json_body: Any = Field(default=None, alias="json", description="a JSON body ({{name}} in strings)")
    expect_status: list[int] = [200]
    json_conditions: list[JsonCondition] = []
    capture: dict[str, str] = Field(default={}, description="name -> JSON path of the answer")
    max_ms: Threshold | None = Field(default=None, description="answer time limit: 800 or ${SMOKE_MAX_MS_X}")
    mutates: bool = Field(default=False, description="changes data: runs only when mutations are allowed")

    @field_validator("url")
    @classmethod
    def _placeholders_in_the_path_only(cls, url: str) -> str:
        if re.search(r"\s", url):
            raise ValueError(f"{url!r}: a URL has no spaces")
        parts = urlsplit(url)
        outside = (parts.scheme, parts.netloc, parts.query, parts.fragment)
        if any(PLACEHOLDER.search(part) for part in outside):
            raise ValueError(f"{url!r}: captured values ({{{{name}}}}) go into the path only")
        if parts.scheme and parts.scheme not in ("http", "https"):
            raise ValueError(f"{url!r}: http or https only")
        return url

    @field_validator("capture")
    @classmethod
    def _names(cls, capture: dict[str, str]) -> dict[str, str]:
        for name in capture:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not a capture name (letters, digits, _)")
        return capture

    def needs(self) -> set[str]:
        """The captured values this step puts into its request."""
        texts = [self.url, *self.headers.values(), json.dumps(self.json_body)]
        return {match.group(1) for text in texts for match in PLACEHOLDER.finditer(text)}


class ScenarioCheck(CheckBase):
    """A short sequence of HTTP requests, each with its conditions and time limit."""

    kind: ClassVar[str] = "scenario"
    default_markers: ClassVar[tuple[str, ...]] = ("smoke", "incident")

    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s{}]+$", max_length=4096)
    headers: dict[str, str] = Field(
        default={}, description='every step: {X-Api-Key: "${INTEGRATION_API_KEY}"}'
    )
    steps: list[Step] = Field(min_length=1, max_length=50)
    allow_mutations_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="an environment switch (=1) that allows mutating steps, as SMOKE_ALLOW_MUTATIONS",
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="each step's deadline, seconds")
    verify_tls: bool = True

    @model_validator(mode="after")
    def _coherent(self) -> ScenarioCheck:
        captured: set[str] = set()
        names: set[str] = set()
        for step in self.steps:
            if step.name in names:
                raise ValueError(f"step {step.name!r} named twice")
            names.add(step.name)
            unknown = sorted(step.needs() - captured)
            if unknown:
                raise ValueError(f"step {step.name}: {', '.join(unknown)} not captured by an earlier step")
            if not urlsplit(step.url).scheme and self.base_url is None:
                raise ValueError(f"step {step.name}: {step.url!r} is a path: set base_url")
            captured |= set(step.capture)
        return self

    def mutations_allowed(self) -> tuple[bool, str]:
        """Whether mutating steps run, and how a description turns them on."""
        switch = self.allow_mutations_env
        on = self.writes_allowed or bool(switch and os.environ.get(switch, "").strip().lower() in SWITCHED_ON)
        how = "--allow-writes, allow_writes: true" + (f" or {switch}=1" if switch else "")
        return on, how


def verify(check: ScenarioCheck, target: Target) -> None:
    """Each step in order, from the runner: the API is asked as its clients ask it."""
    captured: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    allowed, how = check.mutations_allowed()
    passed = 0
    for step in check.steps:
        missing = sorted(name for name in step.needs() if name not in captured)
        if step.mutates and not allowed:
            skipped[step.name] = f"mutates: runs only with {how}"
        elif missing:
            skipped[step.name] = f"needs {', '.join(missing)}"
        else:
            captured.update(_run(check, step, target, captured))
            passed += 1
    if skipped:
        listed = "; ".join(f"{name} ({why})" for name, why in skipped.items())
        raise CheckPassed(f"{passed} of {len(check.steps)} steps passed; skipped {listed}")


def _run(check: ScenarioCheck, step: Step, target: Target, captured: dict[str, Any]) -> dict[str, Any]:
    """Send one step and judge its answer; the values it captures."""
    url = _url(check, step, captured)
    where = f"step {step.name}: {step.method} {url}"
    headers = {**check.headers, **{name: _text(value, captured) for name, value in step.headers.items()}}
    try:
        valid_headers(headers)  # a captured value with a line break cannot smuggle a header
    except ValueError as exc:
        raise CheckFailed(f"{where} sends one-line headers", f"{exc} ({where})") from None
    content = None
    if step.json_body is not None:
        content = json.dumps(_filled(step.json_body, captured)).encode()
        headers.setdefault("Content-Type", "application/json")
    request = Endpoint(url=url, timeout=check.timeout, verify_tls=check.verify_tls)
    try:
        answer = endpoint.send(request, target, method=step.method, headers=headers, content=content)
    except CheckFailed as exc:  # no answer: the same words as every HTTP kind, with the step's name
        raise CheckFailed(f"step {step.name}: {exc.expected}", f"step {step.name}: {exc.found}") from None
    evidence = {f"response body of step {step.name}": answer.text[:BODY_EVIDENCE] + answer.body_note()}
    taken = f"{answer.seconds * 1000:.0f}ms"
    if answer.status not in step.expect_status:
        wanted = "/".join(map(str, step.expect_status))
        raise CheckFailed(
            f"{where} answers {wanted}", f"status {answer.status} != {wanted} ({where}, {taken})", evidence
        )
    if step.max_ms is not None:
        limit = resolved(step.max_ms)
        if answer.seconds * 1000 > limit:
            raise CheckFailed(
                f"{where} answers within {limit:g}ms",
                f"answered in {taken} > {limit:g}ms ({where})",
                evidence,
            )
    if not step.json_conditions and not step.capture:
        return {}
    try:
        document = json.loads(answer.body)
    except (ValueError, RecursionError):  # RecursionError: nesting past Python's limit
        raise CheckFailed(
            f"{where} answers JSON", f"body is not JSON: {answer.text[:120]!r} ({where})", evidence
        ) from None
    failures = [failure for condition in step.json_conditions if (failure := condition.failure(document))]
    if failures:
        raise CheckFailed(
            "JSON " + "; ".join(condition.expected() for condition in step.json_conditions),
            f"JSON {'; '.join(failures)} ({where})",
            evidence,
        )
    return _captures(step, document, where, evidence)


def _captures(step: Step, document: Any, where: str, evidence: dict[str, str]) -> dict[str, Any]:
    values = {}
    for name, path in step.capture.items():
        value = lookup(document, path)
        if value is MISSING or isinstance(value, dict | list) or value is None:
            found = "absent" if value is MISSING else f"a {type(value).__name__}"
            raise CheckFailed(
                f"{where}: {path} holds a value to capture as {name}",
                f"{path} is {found} ({where})",
                evidence,
            )
        if len(_scalar(value)) > MAX_CAPTURED:
            raise CheckFailed(
                f"{where}: {path} holds a value to capture as {name} (at most {MAX_CAPTURED} characters)",
                f"{path} is {len(_scalar(value))} characters long, more than a captured value may be "
                f"({MAX_CAPTURED}; {where})",
                evidence,
            )
        if SECRET_NAME.search(name):  # a captured token is masked like any secret
            SECRETS.add(str(value), name)
        values[name] = value
    return values


def _url(check: ScenarioCheck, step: Step, captured: dict[str, Any]) -> str:
    """The step's URL with captured values quoted as path segments (a '/' in one stays in it)."""
    path = PLACEHOLDER.sub(lambda match: _segment(_scalar(captured[match.group(1)])), step.url)
    if check.base_url and not urlsplit(path).scheme:
        return f"{check.base_url.rstrip('/')}/{path.lstrip('/')}"
    return path


def _segment(value: str) -> str:
    """One path segment: '/' quoted, and '.' / '..' too, which clients and servers resolve as the
    current or parent folder (a captured '..' turned /customers/{{cid}}/balance into /balance)."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in {".", ".."} else quoted


def _text(text: str, captured: dict[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda match: _scalar(captured[match.group(1)]), text)


def _filled(body: Any, captured: dict[str, Any]) -> Any:
    """A JSON body with placeholders filled: a string that is one placeholder takes the value as is."""
    if isinstance(body, dict):
        return {key: _filled(value, captured) for key, value in body.items()}
    if isinstance(body, list):
        return [_filled(value, captured) for value in body]
    if isinstance(body, str):
        whole = PLACEHOLDER.fullmatch(body)
        return captured[whole.group(1)] if whole else _text(body, captured)
    return body


def _scalar(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)
