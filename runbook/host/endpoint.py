"""Where an HTTP request goes from: the runner (httpx), the host, or inside a container (curl).

The web-API kinds (http, access, metrics, rate_limit) name an endpoint the same
way: a URL, from the runner by default; `via: host` for a port bound to the
server's localhost; `container:` / `service:` for one that only answers inside
the container (every container of a scaled service is asked). From the runner
the request goes through `runbook.host.http_client` (one total deadline, a capped body); on
the host through curl with --max-time, the runbook's own tool, whose output the
host seam caps. Inside a container without curl (a slim Python image) the same exchange
goes through its python3 (PYTHON_FETCH).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from runbook.describe.model import ContainerName, HttpUrl, InContainer
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host, http_client
from runbook.host.docker_host import Container
from runbook.host.target import Result, Target

CURL_TRAILER = "\n__runbook_http__ %{http_code} %{time_total}"
# curl: could not resolve / connect / TLS / empty reply / receive failure / bad certificate.
CURL_NO_ANSWER = {6, 7, 35, 52, 56, 60}
CURL_TIMED_OUT = 28
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class Endpoint(InContainer):
    """An HTTP endpoint and where it is asked from."""

    url: HttpUrl
    method: Literal["GET", "HEAD", "POST", "OPTIONS"] = "GET"
    via: Literal["runner", "host"] = Field(
        default="runner", description="runner: from this machine (httpx); host: curl on the host"
    )
    container: ContainerName | None = Field(
        default=None, description="curl (python3 without it) inside this container"
    )
    timeout: float = Field(default=5.0, gt=0, le=120)
    headers: dict[str, str] = Field(default={}, description='values from secrets: {X-API-KEY: "${KEY}"}')
    verify_tls: bool = True

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return valid_headers(headers)

    @model_validator(mode="after")
    def _where(self) -> Endpoint:
        if (self.container or self.service) and self.via == "runner":
            object.__setattr__(self, "via", "host")
        return self


def valid_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names are tokens and values one line: neither can become another header or an option."""
    for name, value in headers.items():
        if not HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not an HTTP header name")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"header {name}: a value has no line break or NUL")
    return headers


# Request headers as a description writes them, checked by valid_headers.
Headers = Annotated[dict[str, str], AfterValidator(valid_headers)]


def origins(endpoint: Endpoint, target: Target) -> list[Container | None]:
    """Where the request is sent from: the runner or the host (None), or each container named."""
    ref = endpoint.container_ref
    return list(docker_host.containers(target, ref)) if ref else [None]


def describe(endpoint: Endpoint, origin: Container | None, *, method: str | None = None) -> str:
    """'GET http://127.0.0.1:8000/ready (inside service web (map-v12-web-1))'."""
    inside = f" (inside {origin})" if origin else ""
    return f"{method or endpoint.method} {endpoint.url}{inside}"


def send(
    endpoint: Endpoint,
    target: Target,
    origin: Container | None = None,
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> http_client.Answer:
    """One exchange; CheckFailed when no answer came (deadline, refused, DNS, TLS)."""
    method = method or endpoint.method
    headers = {**endpoint.headers, **(headers or {})}
    if endpoint.via == "runner" and origin is None:
        return _from_runner(endpoint, method, headers, content)
    return _with_curl(endpoint, target, origin, method, headers, content)


def require_status(
    answer: http_client.Answer, wanted: list[int], where: str, evidence: dict[str, str] | None = None
) -> None:
    """CheckFailed 'status 503 != 200 (GET url, 0.12s)' unless the answer's status is wanted."""
    if answer.status not in wanted:
        codes = "/".join(map(str, wanted))
        raise CheckFailed(
            f"{where} answers {codes}",
            f"status {answer.status} != {codes} ({where}, {answer.seconds:.2f}s)",
            evidence,
        )


def _from_runner(
    endpoint: Endpoint, method: str, headers: dict[str, str], content: bytes | None
) -> http_client.Answer:
    where = f"{method} {endpoint.url}"
    try:
        return http_client.fetch(
            method,
            endpoint.url,
            headers=headers,
            content=content,
            timeout=endpoint.timeout,
            verify_tls=endpoint.verify_tls,
        )
    except http_client.NoAnswer:
        raise CheckFailed(
            f"{where} answers within {endpoint.timeout:g}s",
            f"no answer within {endpoint.timeout:g}s ({where})",
            timing=True,
        ) from None
    except http_client.RequestFailed as exc:
        raise CheckFailed(f"{where} answers", f"{where} failed: {exc}") from None


def _with_curl(
    endpoint: Endpoint,
    target: Target,
    origin: Container | None,
    method: str,
    headers: dict[str, str],
    content: bytes | None,
) -> http_client.Answer:
    curl = ["curl", "-sS", "-D", "-", "-X", method, "--max-time", f"{endpoint.timeout:g}", "-w", CURL_TRAILER]
    if method == "HEAD":
        curl[4:6] = ["-I"]
    if not endpoint.verify_tls:
        curl.append("-k")
    for name, value in headers.items():
        curl += ["-H", f"{name}: {value}"]
    if content is not None:
        curl += ["--data-raw", content.decode("utf-8", errors="replace")]
    curl.append(endpoint.url)
    template = " ".join("%s" for _ in curl)
    deadline = endpoint.timeout + 10
    if origin is not None:
        result = docker_host.exec_in(target, origin, template, *curl, timeout=deadline)
        if _not_found(result):  # a slim image: the same exchange through its python3
            result = _with_python(endpoint, target, origin, method, headers, content)
    else:
        result = target.run(template, *curl, timeout=deadline)
    raw, marker, trailer = result.stdout.rpartition("\n__runbook_http__ ")
    where = describe(endpoint, origin, method=method)
    if result.rc == CURL_TIMED_OUT:
        raise CheckFailed(
            f"{method} {endpoint.url} answers within {endpoint.timeout:g}s",
            f"no answer within {endpoint.timeout:g}s ({where})",
        )
    if result.rc != 0 or not marker:
        said = result.stderr.strip()[:300] or f"curl exit {result.rc}"
        inside = f" (inside {origin})" if origin else ""
        if result.rc in CURL_NO_ANSWER:
            raise CheckFailed(f"{method} {endpoint.url} answers", f"{said}{inside}")
        raise CheckError(f"curl {endpoint.url}{inside}: {said}")
    status, seconds = trailer.split()
    response_headers, body = split_head(raw)
    return http_client.Answer(
        status=int(status),
        body=body.encode("utf-8", errors="replace"),
        seconds=float(seconds),
        headers=response_headers,
        truncated=result.dropped > 0,
    )


# The exchange of `curl -sS -D - -w CURL_TRAILER` in python3's standard library, for a container
# without curl: the same output (the head, the body, the trailer) and curl's exit codes for no
# answer (7) and a timeout (28). argv: method, url, timeout, insecure (1/0), has body (1/0), body,
# then "Name: value" headers. Redirects are not followed, as curl's are not.
PYTHON_FETCH = """\
import socket, ssl, sys, time, urllib.error, urllib.request
method, url, timeout, insecure, has_body, body = sys.argv[1:7]
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
context = ssl.create_default_context()
if insecure == "1":
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
opener = urllib.request.build_opener(Stay, urllib.request.HTTPSHandler(context=context))
request = urllib.request.Request(url, data=body.encode() if has_body == "1" else None, method=method)
for header in sys.argv[7:]:
    name, _, value = header.partition(": ")
    request.add_header(name, value)
started = time.monotonic()
try:
    answer = opener.open(request, timeout=float(timeout))
except urllib.error.HTTPError as error:
    answer = error
except (socket.timeout, TimeoutError) as error:
    print(f"python3: {url}: {error}", file=sys.stderr); sys.exit(28)
except urllib.error.URLError as error:
    timed_out = isinstance(error.reason, (socket.timeout, TimeoutError))
    print(f"python3: {url}: {error.reason}", file=sys.stderr); sys.exit(28 if timed_out else 7)
data = answer.read() if method != "HEAD" else b""
status = answer.status if hasattr(answer, "status") and answer.status else answer.code
head = f"HTTP/1.1 {status} {answer.reason}\\r\\n" + "".join(
    f"{name}: {value}\\r\\n" for name, value in answer.headers.items()
)
out = sys.stdout.buffer
out.write(head.encode("latin-1", "replace") + b"\\r\\n" + data)
out.write(f"\\n__runbook_http__ {status} {time.monotonic() - started:.6f}".encode())
"""


def _not_found(result: Result) -> bool:
    """docker exec's answer for a program the image does not have (126/127, 'not found')."""
    said = (result.stdout + result.stderr).lower()
    return result.rc in {126, 127} and ("not found" in said or "no such file" in said)


def _with_python(
    endpoint: Endpoint,
    target: Target,
    origin: Container,
    method: str,
    headers: dict[str, str],
    content: bytes | None,
) -> Result:
    """The exchange through the container's python3 (PYTHON_FETCH); a CheckError without one."""
    body = content.decode("utf-8", errors="replace") if content is not None else ""
    args = [method, endpoint.url, f"{endpoint.timeout:g}", "0" if endpoint.verify_tls else "1"]
    args += [
        "1" if content is not None else "0",
        body,
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    template = "python3 -c %s" + " %s" * len(args)
    result = docker_host.exec_in(target, origin, template, PYTHON_FETCH, *args, timeout=endpoint.timeout + 10)
    if _not_found(result):
        raise CheckError(f"cannot fetch {endpoint.url} inside {origin}: it has neither curl nor python3")
    return result


def split_head(raw: str) -> tuple[dict[str, str], str]:
    """(headers of the final response, lower-case names; body) from curl's `-D -` output."""
    headers: dict[str, str] = {}
    rest = raw
    while rest.startswith("HTTP/"):
        head, separator, after = rest.partition("\r\n\r\n")
        if not separator:
            head, separator, after = rest.partition("\n\n")
        lines = head.splitlines()
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        rest = after
        code = lines[0].split()[1] if len(lines[0].split()) > 1 else ""
        if not code.startswith("1"):  # 100 Continue and 103 Early Hints precede the real answer
            break
    return headers, rest


BODY_EVIDENCE = 4000
