"""Container facts (runbook: `docker ps`, `docker inspect`, `docker stats`, exit codes).

Crashes and restarts are read from `docker events` of the container's current
id: the state of a container that docker has already restarted no longer shows
its OOM kill, but the daemon's event log does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from runbook.hosts import Target
from runbook.outcome import CheckError, CheckFailed
from runbook.schema import ContainerCheck, parse_duration, parse_size
from runbook.units import human_bytes

EXIT_MEANING = {0: "normal exit", 1: "application error", 137: "killed (OOM)", 139: "segfault"}


def inspect_or_fail(target: Target, container: str) -> dict[str, Any]:
    info = target.docker_inspect(container)
    if info is None:
        raise CheckFailed(f"container {container} exists", f"no container named {container}")
    return info


def describe_state(state: dict[str, Any]) -> str:
    status = state.get("Status", "?")
    text = status
    if status in {"exited", "dead"} or state.get("Restarting"):
        code = state.get("ExitCode")
        text += f" (exit code {code}: {EXIT_MEANING.get(code, 'error')})"
        if state.get("OOMKilled"):
            text += ", OOM-killed"
    if status == "running" and state.get("StartedAt"):
        text += f" since {state['StartedAt'][:19].replace('T', ' ')} UTC"
    return text


def require_running(target: Target, container: str) -> dict[str, Any]:
    """For checks that need the container up: one clear line when it is not."""
    info = inspect_or_fail(target, container)
    state = info["State"]
    if state.get("Status") != "running" or state.get("Restarting"):
        raise CheckFailed(f"container {container} running", f"{container} is {describe_state(state)}")
    return info


def verify(check: ContainerCheck, target: Target) -> None:
    {
        "state": _state,
        "restart_policy": _restart_policy,
        "memory_limit": _memory_limit,
        "no_crash_within": _no_crash,
        "max_restarts": _restarts,
        "max_memory_percent": _memory_usage,
    }[check.aspect](check, target)


def _state(check: ContainerCheck, target: Target) -> None:
    info = inspect_or_fail(target, check.container)
    state = info["State"]
    restarts = info.get("RestartCount", 0)
    found = f"{check.container} is {describe_state(state)}"
    if restarts:
        found += f", restarted {restarts} times"
    if state.get("Status") != "running" or state.get("Restarting"):
        raise CheckFailed(f"{check.container} running (not restarting, not exited)", found)


def _restart_policy(check: ContainerCheck, target: Target) -> None:
    info = inspect_or_fail(target, check.container)
    policy = info["HostConfig"].get("RestartPolicy", {}).get("Name") or "no"
    if policy != check.restart_policy:
        raise CheckFailed(
            f"restart policy {check.restart_policy}",
            f"restart policy {policy} != {check.restart_policy}",
        )


def _memory_limit(check: ContainerCheck, target: Target) -> None:
    info = inspect_or_fail(target, check.container)
    limit = int(info["HostConfig"].get("Memory") or 0)
    if check.memory_limit == "set":
        if limit <= 0:
            raise CheckFailed("a memory limit", "no memory limit (unlimited)")
        return
    wanted = parse_size(check.memory_limit or "0")
    if limit != wanted:
        shown = human_bytes(limit) if limit else "none (unlimited)"
        raise CheckFailed(
            f"memory limit {human_bytes(wanted)}", f"memory limit {shown} != {human_bytes(wanted)}"
        )


def _events(target: Target, container_id: str, window: str, actions: tuple[str, ...]) -> list[dict[str, Any]]:
    """The daemon's events for this container id in the window (bounded by --until now)."""
    filters = " ".join(f"--filter event={action}" for action in actions)
    result = target.run(
        'docker events --since %s --until "$(date +%%s)" --filter container=%s '
        + filters
        + " --format '{{json .}}'",
        f"{int(parse_duration(window))}s",
        container_id,
    )
    if result.rc != 0:
        raise CheckError(f"docker events failed: {result.stderr.strip()[:300]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _when(event: dict[str, Any]) -> str:
    stamp = datetime.fromtimestamp(event.get("timeNano", 0) / 1e9, tz=UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def _exit_code(event: dict[str, Any]) -> str:
    return str(event.get("Actor", {}).get("Attributes", {}).get("exitCode", "?"))


def _no_crash(check: ContainerCheck, target: Target) -> None:
    info = inspect_or_fail(target, check.container)
    window = check.no_crash_within or "24h"
    crashes: list[str] = []
    for event in _events(target, info["Id"], window, ("die", "oom")):
        attributes = event.get("Actor", {}).get("Attributes", {})
        if event.get("Action") == "oom":
            crashes.append(f"OOM kill at {_when(event)}")
            continue
        code = int(attributes.get("exitCode", 0))
        if code in check.crash_exit_codes:
            crashes.append(f"exit {code} ({EXIT_MEANING.get(code, 'crash')}) at {_when(event)}")
    state = info["State"]
    if state.get("OOMKilled") and not any("OOM" in crash for crash in crashes):
        crashes.append(f"OOM-killed (state), exit code {state.get('ExitCode')}")
    if crashes:
        raise CheckFailed(
            f"no OOM kill and no exit {'/'.join(map(str, check.crash_exit_codes))} in the last {window}",
            f"{check.container}: {len(crashes)} crash(es) in the last {window}: " + "; ".join(crashes[-5:]),
            {"crashes": "\n".join(crashes)},
        )


def _restarts(check: ContainerCheck, target: Target) -> None:
    """Starts of this container after its first: docker's restarts, not an operator's stop."""
    info = inspect_or_fail(target, check.container)
    events = _events(target, info["Id"], check.within, ("start", "die"))
    starts = [event for event in events if event.get("Action") == "start"]
    created = datetime.fromisoformat(info["Created"][:19]).replace(tzinfo=UTC)
    window_start = datetime.now(UTC).timestamp() - parse_duration(check.within)
    if starts and created.timestamp() >= window_start:
        starts = starts[1:]  # the start that followed `create` is not a restart
    limit = check.max_restarts or 0
    if len(starts) > limit:
        codes = ", ".join(_exit_code(event) for event in events if event.get("Action") == "die")
        raise CheckFailed(
            f"at most {limit} restarts in the last {check.within}",
            f"{check.container} restarted {len(starts)} times in the last {check.within} > {limit} "
            f"(RestartCount {info.get('RestartCount', 0)}; exit codes {codes[-60:] or 'none'})",
            {"restarts": "\n".join(f"{_when(e)} {e.get('Action')} {_exit_code(e)}" for e in events)},
        )


def _stats(target: Target) -> dict[str, dict[str, Any]]:
    def read() -> dict[str, dict[str, Any]]:
        result = target.run("docker stats --no-stream --format '{{json .}}'", timeout=30)
        if result.rc != 0:
            raise CheckError(f"docker stats failed: {result.stderr.strip()[:300]}")
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return {row["Name"]: row for row in rows}

    return target.cached(("docker-stats",), read)


def _memory_usage(check: ContainerCheck, target: Target) -> None:
    info = require_running(target, check.container)
    row = _stats(target).get(check.container)
    if row is None:
        raise CheckFailed(f"{check.container} in docker stats", f"{check.container} not in docker stats")
    percent = float(row["MemPerc"].rstrip("%"))
    limit = int(info["HostConfig"].get("Memory") or 0)
    scope = "of its limit" if limit else "of host memory (no limit set)"
    threshold = check.max_memory_percent or 80
    if percent >= threshold:
        raise CheckFailed(
            f"memory under {threshold:g}% {scope}",
            f"{check.container} uses {percent:.1f}% {scope} ({row['MemUsage']}) >= {threshold:g}%",
        )
