"""Why a reverse proxy answers 502/504: the runbook's incident 1, looked at by the suite.

"502/504 from nginx: check `web` (its logs), that web:8000 listens and gunicorn
started without errors." Given the upstream's container (or compose service) and
port, this says whether it runs, whether its port accepts a connection from
inside it, and the last error lines of its log, as one line and its evidence.

A plain process on the host (gunicorn under systemd, no docker) is `{port: 8000}` with
optionally `process: gunicorn` and `log: /var/log/app/error.log`: whether anything listens
on the port (ss), whether the process runs (ps: its program name or its script's, so
`python3 /srv/venv/bin/gunicorn` and `gunicorn: master [app]` are both gunicorn), and the
last error lines of its log file.
"""

from __future__ import annotations

import posixpath

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import ContainerName, HostPath, InContainer, regex
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host, log_files, sockets
from runbook.host.target import Target

DEFAULT_LOG_PATTERN = r"error|exception|traceback|critical|failed|refused"
CONNECT_TIMEOUT = 3.0
LOG_TAIL = 200
LOG_KEEP = 10
# What is left when the upstream runs and accepts connections (a network disconnected behind
# docker's back looks exactly so from inside the upstream).
NOT_THE_UPSTREAM = "the proxy's own configuration, its network to the upstream, or timeouts"


class Upstream(InContainer):
    """The service behind the proxy: `{service: web, port: 8000}`, `{container: NAME, port: ...}`,
    or a process on the host: `{port: 8000, process: gunicorn, log: /var/log/app/error.log}`."""

    container: ContainerName | None = None
    port: int = Field(gt=0, lt=65536)
    process: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^\s/]+$",
        description="on the host: the program's name (gunicorn, uvicorn, node): does it run",
    )
    log: HostPath | None = Field(
        default=None, description="on the host: its log file, last error lines shown"
    )
    log_pattern: str = Field(
        default=DEFAULT_LOG_PATTERN, description="extended regex for the log lines worth showing"
    )

    @field_validator("log_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if "\n" in value or not value:
            raise ValueError("one non-empty pattern (use a|b)")
        return regex(value)

    @model_validator(mode="after")
    def _host_fields(self) -> Upstream:
        if (self.process or self.log) and self.container_ref is not None:
            raise ValueError(
                "process and log describe a process on the host; a container's log is read by docker "
                "(drop container/service for a host port)"
            )
        return self

    @property
    def on_host(self) -> bool:
        return self.container_ref is None

    def __str__(self) -> str:
        return f"{self.service or self.container or self.process or 'host'}:{self.port}"


def diagnose(target: Target, upstream: Upstream) -> tuple[str, dict[str, str]]:
    """('upstream web:8000 down: service web (map-v12-web-1) is exited (...)', evidence)."""
    ref = upstream.container_ref
    if ref is None:
        return _diagnose_host(target, upstream)
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
            problem = (
                problem or f"{container} runs and accepts connections on {upstream.port} inside it"
            ) + (f"; its log: {lines.splitlines()[-1][:200]}")
        if problem:
            problems.append(problem)
    if not problems:
        return (
            f"upstream {upstream} is up and accepts connections: {NOT_THE_UPSTREAM}",
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


def _diagnose_host(target: Target, upstream: Upstream) -> tuple[str, dict[str, str]]:
    """A host port's upstream: does anything listen (ss), does the process run (ps), its log."""
    problems: list[str] = []
    evidence: dict[str, str] = {}
    down = False
    try:
        listeners = sockets.on_port(target, upstream.port)
    except CheckError as error:
        problems.append(f"its port could not be looked at: {error}")
    else:
        if listeners:
            evidence[f"listening on port {upstream.port} (ss)"] = "\n".join(map(str, listeners))
        else:
            down = True
            problems.append(f"nothing listens on port {upstream.port} on {target.display}")
    if upstream.process:
        try:
            pids = _host_processes(target, upstream.process)
        except CheckError as error:
            problems.append(f"its process could not be looked at: {error}")
        else:
            if pids:
                evidence[f"processes named {upstream.process}"] = " ".join(pids[:20])
            else:
                down = True
                problems.append(f"no process named {upstream.process} runs")
    if upstream.log:
        try:
            lines = log_files.last_lines(
                target, upstream.log, upstream.log_pattern, tail=LOG_TAIL, keep=LOG_KEEP
            )
        except CheckError as error:
            problems.append(f"its log could not be read: {error}")
        else:
            if lines:
                evidence[f"last error lines of {upstream.log}"] = lines
                problems.append(f"its log: {lines.splitlines()[-1][:200]}")
    if not problems:
        return (
            f"upstream {upstream} is up and accepts connections: {NOT_THE_UPSTREAM}",
            evidence,
        )
    if not down and len(problems) == 1 and problems[0].startswith("its log: "):
        problems.insert(0, f"port {upstream.port} listens")
    return f"upstream {upstream} {'down' if down else 'up'}: " + "; ".join(problems), evidence


def _host_processes(target: Target, name: str) -> list[str]:
    """Pids of the host's processes whose program (or script, under an interpreter) is `name`."""
    result = target.run("ps -eo pid=,args=")
    if result.rc != 0:
        raise CheckError(f"ps on {target.display}: {result.stderr.strip()[:300] or f'exit {result.rc}'}")
    pids = []
    for line in result.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        words = args.split()[:2]
        if any(posixpath.basename(word).rstrip(":") == name for word in words):
            pids.append(pid)
    return pids
