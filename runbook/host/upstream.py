"""Why a reverse proxy answers 502/504: the runbook's incident 1, looked at by the suite.

"502/504 from nginx: check `web` (its logs), that web:8000 listens and gunicorn
started without errors." Given the upstream's container (or compose service) and
port, this says whether it runs, whether its port accepts a connection from
inside it, and the last error lines of its log, as one line and its evidence.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from runbook.describe.model import ContainerName, InContainer, regex
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.target import Target

DEFAULT_LOG_PATTERN = r"error|exception|traceback|critical|failed|refused"
CONNECT_TIMEOUT = 3.0
LOG_TAIL = 200
LOG_KEEP = 10


class Upstream(InContainer):
    """The service behind the proxy: `{service: web, port: 8000}` or `{container: NAME, port: ...}`."""

    container_required: ClassVar[bool] = True

    container: ContainerName | None = None
    port: int = Field(gt=0, lt=65536)
    log_pattern: str = Field(
        default=DEFAULT_LOG_PATTERN, description="extended regex for the log lines worth showing"
    )

    @field_validator("log_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if "\n" in value or not value:
            raise ValueError("one non-empty pattern (use a|b)")
        return regex(value)

    def __str__(self) -> str:
        return f"{self.service or self.container}:{self.port}"


def diagnose(target: Target, upstream: Upstream) -> tuple[str, dict[str, str]]:
    """('upstream web:8000 down: service web (map-v12-web-1) is exited (...)', evidence)."""
    ref = upstream.container_ref
    assert ref is not None  # container_required
    try:
        found = docker_host.containers(target, ref)
    except CheckFailed as failed:
        return f"upstream {upstream} down: {failed.found}", {}
    except CheckError as error:
        return f"upstream {upstream} could not be looked at: {error}", {}
    problems: list[str] = []
    evidence: dict[str, str] = {}
    for container in found:
        try:
            problem = _problem(target, upstream, container)
            lines = docker_host.last_lines(
                target, container, upstream.log_pattern, tail=LOG_TAIL, keep=LOG_KEEP
            )
        except CheckError as error:
            problems.append(f"{container} could not be looked at: {error}")
            continue
        if lines:
            evidence[f"last error lines of {container}"] = lines
            problem = (problem or f"{container} runs and accepts connections on {upstream.port}") + (
                f"; its log: {lines.splitlines()[-1][:200]}"
            )
        if problem:
            problems.append(problem)
    if not problems:
        return (
            f"upstream {upstream} is up and accepts connections: the proxy's own configuration or timeouts",
            evidence,
        )
    down = any("is not running" in problem or "nothing accepts" in problem for problem in problems)
    return f"upstream {upstream} {'down' if down else 'up'}: " + "; ".join(problems), evidence


def _problem(target: Target, upstream: Upstream, container: docker_host.Container) -> str | None:
    info = docker_host.inspect(target, container)
    if info is None:
        return f"{container} is not running (no such container)"
    if not docker_host.is_running(info):
        return f"{container} is not running: {docker_host.describe_state(info.get('State', {}))}"
    refused = docker_host.connect_from(target, container, "127.0.0.1", upstream.port, CONNECT_TIMEOUT)
    if refused is not None:
        return f"nothing accepts connections on port {upstream.port} inside {container}: {refused}"
    return None
