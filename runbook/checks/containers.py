"""Container facts (runbook: `docker ps`, `docker inspect`, `docker stats`, exit codes).

Crashes and restarts are read from `docker events` of the container's current
id: the state of a container that docker has already restarted no longer shows
its OOM kill, but the daemon's event log does. A compose service (`service: web`)
is every container of it: each must meet the check, and a failure names which.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, ClassVar, Literal

from pydantic import Field

from runbook.describe.model import ByteSize, CheckBase, ContainerName, Duration, InContainer, format_duration
from runbook.describe.units import human_bytes
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.docker_host import Container
from runbook.host.target import Target


class ContainerCheck(CheckBase, InContainer):
    """One fact about one container (or each of a compose service's): inspect, events, stats."""

    kind: ClassVar[str] = "containers"
    container_required: ClassVar[bool] = True
    aspects: ClassVar[tuple[str, ...]] = (
        "state",
        "restart_policy",
        "memory_limit",
        "no_crash_within",
        "max_restarts",
        "max_memory_percent",
        "log_options",
        "published_ports",
        "mounts",
    )

    container: ContainerName | None = None
    state: Literal["running"] | None = None
    restart_policy: str | None = None
    memory_limit: Literal["set"] | ByteSize | None = Field(
        default=None, description="'set' or a size such as 1G", union_mode="left_to_right"
    )
    no_crash_within: Duration | None = Field(
        default=None,
        description="window such as 24h: no OOM kill, no exit 137/139 (an exit 137 after "
        "a kill or before a stop, in docker events, is a stop the operator asked for: not a crash)",
    )
    max_restarts: int | None = Field(default=None, ge=0, le=1_000_000)
    within: Duration = 86400.0
    max_memory_percent: float | None = Field(default=None, gt=0, le=100)
    crash_exit_codes: list[int] = [137, 139]
    log_options: dict[str, str] | None = Field(
        default=None,
        description="json-file log driver with these options, e.g. {max-size: 10m, max-file: '3'}",
    )
    published_ports: list[str] | None = Field(
        default=None,
        description="exactly these ports published on the host, as `docker ps` shows them "
        "(['0.0.0.0:8000->8000/tcp']); [] for none: an internal service, not reachable from outside",
    )
    mounts: dict[str, str] | None = Field(
        default=None,
        description="path in the container -> the volume name (or host path) mounted there, "
        "e.g. {/data: ai-calendar-assistant_radicale-data}",
    )
    logs_on_failure: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="state: the last N lines of `docker logs` as evidence when it fails",
    )

    @property
    def provides(self) -> tuple[str, ...]:
        """A container that must be running: the cause of what fails inside or of it meanwhile."""
        return self.needs if self.state == "running" else ()


def verify(check: ContainerCheck, target: Target) -> None:
    assert check.container_ref is not None  # container_required
    found = docker_host.containers(target, check.container_ref)
    if check.aspect == "state":
        _state(check, target, found)
        return
    for container in found:
        {
            "restart_policy": _restart_policy,
            "memory_limit": _memory_limit,
            "no_crash_within": _no_crash,
            "max_restarts": _restarts,
            "max_memory_percent": _memory_usage,
            "log_options": _log_options,
            "published_ports": _published_ports,
            "mounts": _mounts,
        }[check.aspect](check, target, container)


def _log_options(check: ContainerCheck, target: Target, container: Container) -> None:
    """compose's `logging:` as docker applied it (runbook: docker inspect ... LogConfig)."""
    info = docker_host.inspect_or_fail(target, container)
    config = info.get("HostConfig", {}).get("LogConfig") or {}
    driver, options = config.get("Type") or "json-file", config.get("Config") or {}
    wanted = dict(check.log_options or {})
    if driver == "json-file" and all(options.get(key) == value for key, value in wanted.items()):
        return
    shown = " ".join(f"{key}={value}" for key, value in sorted(options.items())) or "no options"
    expected = " ".join(f"{key}={value}" for key, value in sorted(wanted.items()))
    raise CheckFailed(
        f"log driver json-file {expected}", f"{container} logs with {driver} {shown} != json-file {expected}"
    )


def published(info: dict[str, Any]) -> list[str]:
    """The container's published ports as `docker ps` writes them: '0.0.0.0:8000->8000/tcp'.

    Read from HostConfig.PortBindings: a binding without a host address is on every interface
    (0.0.0.0, and [::] where docker also binds IPv6: one publication, shown once).
    """
    found = set()
    for port, bindings in (info.get("HostConfig", {}).get("PortBindings") or {}).items():
        for binding in bindings or []:
            address = binding.get("HostIp") or "0.0.0.0"
            address = f"[{address}]" if ":" in address else address
            found.add(f"{address}:{binding.get('HostPort') or ''}->{port}")
    return sorted(found)


def _published_ports(check: ContainerCheck, target: Target, container: Container) -> None:
    """Only the ports the runbook lists are published (runbook: `docker ps` PORTS column)."""
    found = published(docker_host.inspect_or_fail(target, container))
    wanted = sorted(set(check.published_ports or []))
    if found != wanted:
        expected = ", ".join(wanted) or "no published port (internal only)"
        raise CheckFailed(
            f"published ports: {expected}",
            f"{container} publishes {', '.join(found) or 'nothing'} != {expected}",
        )


def _mounts(check: ContainerCheck, target: Target, container: Container) -> None:
    """The named volume (or host path) mounted at each path (runbook: `docker volume inspect`)."""
    mounts = docker_host.inspect_or_fail(target, container).get("Mounts") or []
    by_path = {str(mount.get("Destination")): mount for mount in mounts}
    for path, wanted in sorted((check.mounts or {}).items()):
        mount = by_path.get(path)
        if mount is None:
            raise CheckFailed(f"{wanted} mounted at {path}", f"nothing is mounted at {path} in {container}")
        found = mount.get("Name") if mount.get("Type") == "volume" else mount.get("Source")
        if wanted not in (mount.get("Name"), mount.get("Source")):
            raise CheckFailed(
                f"{wanted} mounted at {path}",
                f"{path} in {container} is {mount.get('Type', '?')} {found or '(anonymous)'} != {wanted}",
            )


def _state(check: ContainerCheck, target: Target, found: list[Container]) -> None:
    """Every container running; for a scaled service, how many are and which are not."""
    down = []
    for container in found:
        first = docker_host.inspect_or_fail(target, container)
        info = _settled(target, container, first)
        before, after = int(first.get("RestartCount") or 0), int(info.get("RestartCount") or 0)
        if docker_host.is_running(info) and after > before:
            # Read again and running again, but a new run: it crashed and was restarted meanwhile
            # (make test saw a broken xray config pass as running this way).
            down.append(
                f"{container} is restarting in a loop: running at one look, restarted again by its "
                f"restart policy before the next (RestartCount {before} -> {after})"
            )
            continue
        if not docker_host.is_running(info):
            said = f"{container} is {docker_host.describe_state(info.get('State', {}))}"
            restarts = info.get("RestartCount", 0)
            down.append(said + (f", restarted {restarts} times" if restarts else ""))
    if not down:
        return
    named = str(check.container_ref)
    if len(found) > 1:
        down.insert(0, f"{len(found) - len(down)} of {len(found)} containers of {named} running")
    evidence = {}
    if check.logs_on_failure:
        for container in found:
            tail = target.run("docker logs --tail %s -- %s 2>&1", str(check.logs_on_failure), container.name)
            evidence[f"docker logs --tail {check.logs_on_failure} {container}"] = tail.stdout
    raise CheckFailed(f"{named} running (not restarting, not exited)", "; ".join(down), evidence)


# A container its restart policy started again less than this ago may be about to crash again.
SETTLE_SECONDS = 3.0
# However long its previous run lasted, a restarted container is waited for at most this long.
MAX_SETTLE_SECONDS = 20.0
# How often a container being waited for is read again: a crash ends the wait at once.
SETTLE_POLL_SECONDS = 0.5


def _settled(target: Target, container: Container, info: dict[str, Any]) -> dict[str, Any]:
    """The state once a fresh restart had time to crash again: a container in a crash loop is
    'running' for the moments between its start and its crash, and must not pass as running then.

    A restart after a crash is waited for three times as long as the longest recent run that
    crashed lasted, plus two seconds (SETTLE_SECONDS at least, MAX_SETTLE_SECONDS at most): one
    start of an app is not as fast as the last on a busy host (CI saw gunicorn's failing boot
    outlast 1.5 times the one before). It is read again every SETTLE_POLL_SECONDS, so a crash
    ends the wait at once.
    """
    if not docker_host.is_running(info) or not info.get("RestartCount"):
        return info
    age = _age_seconds(info)
    if age is None or not 0 <= age < MAX_SETTLE_SECONDS:
        return info
    previous = _longest_crashed_run_seconds(target, info)
    settle = SETTLE_SECONDS if previous is None else previous * 3 + 2
    settle = min(max(settle, SETTLE_SECONDS), MAX_SETTLE_SECONDS)
    deadline = time.monotonic() + settle - age
    current = info
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(SETTLE_POLL_SECONDS, left))
        current = docker_host.read_inspect(target, container.name) or current
        if not docker_host.is_running(current) or current.get("RestartCount") != info.get("RestartCount"):
            break
    return current


def _age_seconds(info: dict[str, Any]) -> float | None:
    """Seconds since the container's current run started, by its inspect `StartedAt`."""
    stamp = str(info.get("State", {}).get("StartedAt", ""))
    try:
        started = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None
    return (datetime.now(UTC) - started).total_seconds()


def _longest_crashed_run_seconds(target: Target, info: dict[str, Any]) -> float | None:
    """How long the longest of its recent runs that ended in a crash lasted, if the current run
    followed such a crash (the restart policy's, not an operator's).

    None when the current run did not follow a crash (an operator's restart, a clean exit) or
    the daemon's events of the last MAX_SETTLE_SECONDS * 15 do not show both ends of that run.
    The longest, not the last: on a busy host one failing boot takes twice as long as the next.
    """
    if not info.get("Id"):
        return None
    try:
        actions = ("die", "stop", "start")
        events = docker_host.events(target, str(info["Id"]), MAX_SETTLE_SECONDS * 15, actions)
    except CheckError:
        return None  # the state check still stands on SETTLE_SECONDS
    starts = [index for index, event in enumerate(events) if event.get("Action") == "start"]
    runs = [_crashed_run_seconds(events, begin, end) for begin, end in pairwise(starts)]
    if not runs or runs[-1] is None:
        return None
    return max(run for run in runs if run is not None)


def _crashed_run_seconds(events: list[dict[str, Any]], start: int, next_start: int) -> float | None:
    """The length of the run begun at events[start], if it ended in a crash before events[next_start]."""
    between = events[start + 1 : next_start]
    dies = [event for event in between if event.get("Action") == "die"]
    if not dies or any(event.get("Action") == "stop" for event in between) or not _exit_code(dies[-1]):
        return None
    return (dies[-1].get("timeNano", 0) - events[start].get("timeNano", 0)) / 1e9


def _restart_policy(check: ContainerCheck, target: Target, container: Container) -> None:
    info = docker_host.inspect_or_fail(target, container)
    policy = info.get("HostConfig", {}).get("RestartPolicy", {}).get("Name") or "no"
    if policy != check.restart_policy:
        raise CheckFailed(
            f"restart policy {check.restart_policy}",
            f"restart policy {policy} != {check.restart_policy} ({container})",
        )


def _memory_limit(check: ContainerCheck, target: Target, container: Container) -> None:
    info = docker_host.inspect_or_fail(target, container)
    limit = int(info.get("HostConfig", {}).get("Memory") or 0)
    if check.memory_limit == "set":
        if limit <= 0:
            raise CheckFailed("a memory limit", f"{container} has no memory limit (unlimited)")
        return
    wanted = int(check.memory_limit or 0)
    if limit != wanted:
        shown = human_bytes(limit) if limit else "none (unlimited)"
        raise CheckFailed(
            f"memory limit {human_bytes(wanted)}",
            f"memory limit {shown} != {human_bytes(wanted)} ({container})",
        )


def _when(event: dict[str, Any]) -> str:
    stamp = datetime.fromtimestamp(event.get("timeNano", 0) / 1e9, tz=UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def _exit_code(event: dict[str, Any]) -> int | None:
    code = event.get("Actor", {}).get("Attributes", {}).get("exitCode")
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


# The exit code of SIGKILL: the kernel's OOM killer, or docker ending a stop that timed out.
SIGKILLED = 137
# The signals of docker stop / restart / kill (SIGTERM, then SIGKILL), as docker events write them.
ENDING_SIGNALS = {"15", "9", "TERM", "KILL"}


def operator_stops(events: list[dict[str, Any]]) -> set[int]:
    """Indexes of the `die` events an operator asked for: a `kill` with SIGTERM or SIGKILL (docker
    stop / restart / kill, compose restart) since the container's last start, or a `stop` after the die.

    `docker-compose restart` sends SIGTERM and, when PID 1 ignores it (a Python process as PID 1
    does), SIGKILL after the timeout: the die says 137 like an OOM kill, but the daemon logged the
    operator's `kill` before it and `stop` after it. A kernel OOM kill has neither.
    """
    asked: set[int] = set()
    killed = False
    for index, event in enumerate(events):
        action = event.get("Action")
        if action == "kill":
            # A reload signal (docker kill -s HUP) asks for no end: a later 137 is not its doing.
            signal = str(event.get("Actor", {}).get("Attributes", {}).get("signal", "15"))
            killed = killed or signal.upper().removeprefix("SIG") in ENDING_SIGNALS
        elif action == "start":
            killed = False
        elif action == "die":
            following = next(
                (later.get("Action") for later in events[index + 1 :] if later.get("Action") != "oom"), None
            )
            if killed or following == "stop":
                asked.add(index)
            killed = False
    return asked


def _no_crash(check: ContainerCheck, target: Target, container: Container) -> None:
    info = docker_host.inspect_or_fail(target, container)
    window = format_duration(check.no_crash_within or 86400)
    crashes: list[str] = []
    stops: list[str] = []
    actions = ("die", "oom", "kill", "stop", "start")
    events = docker_host.events(target, info["Id"], check.no_crash_within or 86400, actions)
    by_operator = operator_stops(events)
    for index, event in enumerate(events):
        if event.get("Action") == "oom":
            crashes.append(f"OOM kill at {_when(event)}")
            continue
        if event.get("Action") != "die":
            continue
        code = _exit_code(event)
        if code == SIGKILLED and index in by_operator:
            stops.append(
                f"exit {code} at {_when(event)}: a stop the operator asked for (kill/stop), timed out"
            )
        elif code in check.crash_exit_codes:
            crashes.append(f"exit {code} ({docker_host.EXIT_MEANING.get(code, 'crash')}) at {_when(event)}")
    state = info.get("State", {})
    if state.get("OOMKilled") and not any("OOM" in crash for crash in crashes):
        crashes.append(f"OOM-killed (state), exit code {state.get('ExitCode')}")
    if crashes:
        evidence = {"crashes": "\n".join(crashes)}
        if stops:
            evidence["operator stops (information)"] = "\n".join(stops)
        raise CheckFailed(
            f"no OOM kill and no exit {'/'.join(map(str, check.crash_exit_codes))} in the last {window}",
            f"{container}: {len(crashes)} crash(es) in the last {window}: " + "; ".join(crashes[-5:]),
            evidence,
        )


def classify_restarts(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the `die` events docker answered with a restart after a non-zero exit, operator restarts).

    A start that follows a `die` with no `stop` in between is the daemon applying
    the restart policy; a `stop` in between (docker stop / restart, compose
    restart) means an operator asked for it, which is no restart loop.
    """
    crash_restarts: list[dict[str, Any]] = []
    by_operator: list[str] = []
    last_die: dict[str, Any] | None = None
    stopped = False
    for event in events:
        action = event.get("Action")
        if action == "die":
            last_die, stopped = event, False
        elif action == "stop":
            stopped = True
        elif action == "start" and last_die is not None:
            code = _exit_code(last_die)
            if stopped:
                by_operator.append(f"{_when(event)} started again after a stop (operator)")
            elif code:
                crash_restarts.append(last_die)
            else:
                by_operator.append(f"{_when(event)} restarted by policy after a clean exit (exit 0)")
            last_die, stopped = None, False
    return crash_restarts, by_operator


def _restarts(check: ContainerCheck, target: Target, container: Container) -> None:
    """Restarts docker made after a crash (exit != 0), not the ones an operator asked for."""
    info = docker_host.inspect_or_fail(target, container)
    window = format_duration(check.within)
    events = docker_host.events(target, info["Id"], check.within, ("die", "stop", "start"))
    crash_restarts, by_operator = classify_restarts(events)
    limit = check.max_restarts or 0
    evidence = {}
    if by_operator:
        evidence["operator restarts (information)"] = "\n".join(by_operator)
    if len(crash_restarts) > limit:
        codes = ", ".join(str(_exit_code(event)) for event in crash_restarts[-10:])
        lines = [f"{_when(event)} exit {_exit_code(event)}, restarted by docker" for event in crash_restarts]
        evidence["restarts after a crash"] = "\n".join(lines)
        raise CheckFailed(
            f"at most {limit} restarts after a crash in the last {window}",
            f"{container} restarted {len(crash_restarts)} times in the last {window} > {limit} "
            f"by its restart policy after a crash (exit codes {codes}; last at {_when(crash_restarts[-1])})",
            evidence,
        )


def _memory_usage(check: ContainerCheck, target: Target, container: Container) -> None:
    info = docker_host.require_running(target, container)
    use = docker_host.memory_use(target, container, info)
    if use is None:
        raise CheckFailed(f"{container} in docker stats", f"{container} not in docker stats")
    percent = use.percent
    limit = int(info.get("HostConfig", {}).get("Memory") or 0)
    scope = "of its limit" if limit else "of host memory (no limit set)"
    threshold = check.max_memory_percent or 80
    if percent >= threshold:
        raise CheckFailed(
            f"memory under {threshold:g}% {scope}",
            f"{container} uses {percent:.1f}% {scope} ({use.usage}) >= {threshold:g}%",
        )
