"""What the suite knows about Docker on a host, in one place.

Every kind that looks at or into containers (containers, logs, http via a
container, tcp from a container, sqlite, env_files) goes through here: `docker
inspect` (read once per run and host), "is it running", `docker exec`, `docker
logs`, `docker events` and `docker stats`. Container names are validated by the
schema (docker's own name rule) and every name still goes after `--`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from runbook.outcome import CheckError, CheckFailed

if TYPE_CHECKING:
    from runbook.hosts import Result, Target

EXIT_MEANING = {0: "normal exit", 1: "application error", 137: "killed (OOM)", 139: "segfault"}


def inspect(target: Target, container: str) -> dict[str, Any] | None:
    """`docker inspect` of one container (read once per run), or None when it does not exist."""

    def read() -> dict[str, Any] | None:
        result = target.run("docker inspect --type container -- %s", container)
        if result.rc != 0:
            if "no such" in (result.stderr + result.stdout).lower():
                return None
            raise CheckError(f"docker inspect {container} failed: {result.stderr.strip()[:300]}")
        try:
            return json.loads(result.stdout)[0]  # type: ignore[no-any-return]
        except (ValueError, IndexError, TypeError):
            raise CheckError(f"docker inspect {container}: unreadable answer") from None

    return target.cached(("docker-inspect", container), read)


def inspect_or_fail(target: Target, container: str) -> dict[str, Any]:
    info = inspect(target, container)
    if info is None:
        raise CheckFailed(f"container {container} exists", f"no container named {container}")
    return info


def describe_state(state: dict[str, Any]) -> str:
    """'running since 2026-11-23 08:00:00 UTC', 'exited (exit code 137: killed (OOM)), OOM-killed'."""
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


def is_running(info: dict[str, Any]) -> bool:
    state = info.get("State", {})
    return state.get("Status") == "running" and not state.get("Restarting")


def require_running(target: Target, container: str) -> dict[str, Any]:
    """For checks that need the container up: one clear line when it is not."""
    info = inspect_or_fail(target, container)
    if not is_running(info):
        raise CheckFailed(
            f"container {container} running", f"{container} is {describe_state(info.get('State', {}))}"
        )
    return info


def exec_in(
    target: Target, container: str, template: str, *args: str, timeout: float | None = None
) -> Result:
    """`docker exec CONTAINER <template % quoted args>` once the container is known to run."""
    require_running(target, container)
    return target.run("docker exec %s " + template, container, *args, timeout=timeout)


def logs_template(since_seconds: float | None) -> str:
    """A shell template printing the container's log (stdout and stderr) with timestamps; %s = name."""
    since = f"--since {int(since_seconds)}s " if since_seconds else ""
    return f"docker logs -t {since}-- %s 2>&1"


def events(
    target: Target, container_id: str, window_seconds: float, actions: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The daemon's events for this container id in the window (bounded by --until now), oldest first."""
    filters = " ".join(f"--filter event={action}" for action in actions)
    result = target.run(
        'docker events --since %s --until "$(date +%%s)" --filter container=%s '
        + filters
        + " --format '{{json .}}'",
        f"{int(window_seconds)}s",
        container_id,
    )
    if result.rc != 0:
        raise CheckError(f"docker events failed: {result.stderr.strip()[:300]}")
    found = []
    for line in result.stdout.splitlines():
        if line.strip():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return sorted(found, key=lambda event: event.get("timeNano", 0))


def stats(target: Target) -> dict[str, dict[str, Any]]:
    """`docker stats --no-stream` of every running container, by name (read once per run)."""

    def read() -> dict[str, dict[str, Any]]:
        result = target.run("docker stats --no-stream --format '{{json .}}'", timeout=30)
        if result.rc != 0:
            raise CheckError(f"docker stats failed: {result.stderr.strip()[:300]}")
        rows = []
        for line in result.stdout.splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
        return {row["Name"]: row for row in rows if "Name" in row}

    return target.cached(("docker-stats",), read)
