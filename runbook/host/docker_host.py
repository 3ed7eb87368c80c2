"""What the suite knows about Docker on a host, in one place.

Every kind that looks at or into containers (containers, logs, http via a
container, tcp from a container, sqlite, env_files, container_env) goes through
here: finding a compose service's containers by compose's labels, `docker
inspect` (read once per run and host), "is it running", `docker exec`, `docker
logs`, `docker events` and a container's memory (its cgroup, else `docker stats`).
Container names are validated by the schema (docker's own name rule) and every
name still goes after `--`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runbook.describe.model import ContainerRef
from runbook.errors import CheckError, CheckFailed

if TYPE_CHECKING:
    from runbook.host.target import Result, Target

# 137 is any SIGKILL: the kernel's OOM killer, or `docker stop` after its grace period; the state's
# OOMKilled flag (shown beside it) tells the two apart.
EXIT_MEANING = {
    0: "normal exit",
    1: "application error",
    137: "killed (SIGKILL: out of memory, or a stop that timed out)",
    139: "segfault",
}
# `docker compose run` containers carry oneoff=True: they are not the service.
COMPOSE_FILTERS = (
    "docker ps -a --filter label=com.docker.compose.project=%s "
    "--filter label=com.docker.compose.service=%s --filter label=com.docker.compose.oneoff=False "
    "--format '{{.Names}}'"
)
# What the checks read of `docker inspect`: never Config.Env, whose values are the system's secrets.
INSPECT_FIELDS = (
    '{"Id":{{json .Id}},"Name":{{json .Name}},"RestartCount":{{json .RestartCount}},'
    '"State":{{json .State}},"HostConfig":{{json .HostConfig}},"Mounts":{{json .Mounts}},'
    '"Config":{"Image":{{json .Config.Image}},"Labels":{{json .Config.Labels}}}}'
)
# A container's environment, one Go-quoted "KEY=value" a line (a value may hold newlines).
ENV_LINES = (
    "docker inspect --type container "
    "--format '{{range .Config.Env}}{{printf \"%%q\" .}}{{println}}{{end}}' -- %s"
)


@dataclass(frozen=True)
class Container:
    """A container a check looks at: its name, and the compose service it was found by."""

    name: str
    service: str | None = None

    def __str__(self) -> str:
        return f"service {self.service} ({self.name})" if self.service else self.name

    @classmethod
    def of(cls, container: str | Container) -> Container:
        return container if isinstance(container, Container) else cls(container)


def _number_last(name: str) -> tuple[str, int]:
    """map-v12-web-2 before map-v12-web-10."""
    match = re.fullmatch(r"(.*?)(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else (name, 0)


def containers(target: Target, ref: ContainerRef) -> list[Container]:
    """The containers a check names: the one named, or every container of a compose service."""
    if ref.name:
        return [Container(ref.name)]
    if not ref.project:
        raise CheckError(f"compose service {ref.service}: no project (set project: or compose_project:)")
    project, service = ref.project, ref.service or ""

    def read() -> list[str]:
        result = target.run(COMPOSE_FILTERS, project, service)
        if result.rc != 0:
            raise CheckError(f"docker ps failed: {result.stderr.strip()[:300]}")
        return sorted({line.strip() for line in result.stdout.splitlines() if line.strip()}, key=_number_last)

    names = target.cached(("compose-service", project, service), read)
    if not names:
        raise CheckFailed(
            f"a container of compose service {service} (project {project})",
            f"no container of compose service {service} (project {project})",
        )
    return [Container(name, service) for name in names]


def inspect(target: Target, container: str | Container) -> dict[str, Any] | None:
    """`docker inspect` of one container (read once per run), or None when it does not exist.

    Only INSPECT_FIELDS travel: the environment's values stay on the host.
    """
    name = Container.of(container).name
    return target.cached(("docker-inspect", name), lambda: read_inspect(target, name))


def read_inspect(target: Target, name: str) -> dict[str, Any] | None:
    """`docker inspect` now, past the run's cache (a second look after a wait)."""
    result = target.run(f"docker inspect --type container --format '{INSPECT_FIELDS}' -- %s", name)
    if result.rc != 0:
        if "no such" in (result.stderr + result.stdout).lower():
            return None
        raise CheckError(f"docker inspect {name} failed: {result.stderr.strip()[:300]}")
    try:
        info = json.loads(result.stdout)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise CheckError(f"docker inspect {name}: unreadable answer")
    return info


def inspect_or_fail(target: Target, container: str | Container) -> dict[str, Any]:
    info = inspect(target, container)
    if info is None:
        name = Container.of(container).name
        raise CheckFailed(f"container {container} exists", f"no container named {name}")
    return info


# "NETWORK ADDRESS" lines: kept apart from `inspect`, which reads only what every kind uses.
NETWORKS = (
    "docker inspect --type container --format "
    "'{{range $name, $net := .NetworkSettings.Networks}}{{$name}} {{$net.IPAddress}}{{println}}{{end}}' -- %s"
)


def address(target: Target, container: str | Container) -> str:
    """The container's IP address on its first network (by network name)."""
    name = container.name if isinstance(container, Container) else container
    result = target.run(NETWORKS, name)
    found = sorted(tuple(line.split()) for line in result.stdout.splitlines() if len(line.split()) == 2)
    if result.rc != 0 or not found:
        said = result.stderr.strip()[:300] or "no network has an address"
        raise CheckError(f"no IP address of container {container} (docker inspect): {said}")
    return found[0][1]


def describe_state(state: dict[str, Any]) -> str:
    """'running since 2026-11-23 08:00:00 UTC', 'exited (exit code 1: application error)'."""
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


def require_running(target: Target, container: str | Container) -> dict[str, Any]:
    """For checks that need the container up: one clear line when it is not."""
    info = inspect_or_fail(target, container)
    if not is_running(info):
        raise CheckFailed(
            f"container {container} running", f"{container} is {describe_state(info.get('State', {}))}"
        )
    return info


def exec_in(
    target: Target, container: str | Container, template: str, *args: str, timeout: float | None = None
) -> Result:
    """`docker exec CONTAINER <template % quoted args>` once the container is known to run."""
    require_running(target, container)
    return target.run("docker exec %s " + template, Container.of(container).name, *args, timeout=timeout)


# Connects to (address, port) within the timeout; prints the reason and exits 1 when it cannot.
TCP_PROBE = (
    "import socket,sys\n"
    "try:\n"
    " socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
    "except OSError as e:\n"
    " print(e); sys.exit(1)\n"
)
# What the probe prints when the container has none of its tools (then exits 3).
NO_PROBE_TOOL = "runbook: no TCP probe in this container"
# The TCP probe inside a container, run by `sh -c` with $1 address, $2 port, $3 timeout (seconds),
# $4 whole seconds for nc, $5 the python3 probe. Official images differ in what they carry (nginx's
# has no python3, alpine's has busybox nc), so the first usable tool answers: python3, bash's
# /dev/tcp (under `timeout` where there is one), nc -z, busybox nc -z. Each failure says which
# tool answered; none at all prints NO_PROBE_TOOL.
TCP_PROBE_SH = (
    "a=$1 p=$2 t=$3 w=$4\n"
    'if command -v python3 >/dev/null 2>&1 && python3 -c "import socket" >/dev/null 2>&1; then\n'
    '  out=$(python3 -c "$5" "$a" "$p" "$t" 2>&1); rc=$?; tool=python3\n'
    'elif command -v bash >/dev/null 2>&1 && bash -c "exec 3<>/dev/null" >/dev/null 2>&1; then\n'
    '  set -- bash -c \'exec 3<>"/dev/tcp/$0/$1"\' "$a" "$p"\n'
    '  if command -v timeout >/dev/null 2>&1; then set -- timeout "$w" "$@"; fi\n'
    '  out=$("$@" 2>&1); rc=$?; tool="bash /dev/tcp"\n'
    '  [ $rc -eq 124 ] && out="no connection within ${w}s"\n'
    "elif command -v nc >/dev/null 2>&1; then\n"
    '  out=$(nc -z -w "$w" "$a" "$p" 2>&1); rc=$?; tool="nc -z"\n'
    "elif command -v busybox >/dev/null 2>&1; then\n"
    '  out=$(busybox nc -z -w "$w" "$a" "$p" 2>&1); rc=$?; tool="busybox nc -z"\n'
    "else\n"
    '  echo "' + NO_PROBE_TOOL + ': none of python3, bash, nc, busybox"; exit 3\n'
    "fi\n"
    "[ $rc -eq 0 ] && exit 0\n"
    'echo "${out:-no connection} ($tool, exit $rc)"; exit 1\n'
)


def connect_from(
    target: Target, container: str | Container, address: str, port: int, timeout: float
) -> str | None:
    """None when a TCP connection from inside the container succeeds, else why not.

    The probe is the first of python3, bash's /dev/tcp, nc and busybox nc the container has
    (TCP_PROBE_SH); a container with none of them (or without sh) is a CheckError that says so,
    never "cannot reach".
    """
    result = exec_in(
        target,
        container,
        "sh -c %s sh %s %s %s %s %s",
        TCP_PROBE_SH,
        address,
        str(port),
        f"{timeout:g}",
        str(max(1, math.ceil(timeout))),
        TCP_PROBE,
        timeout=timeout + 10,
    )
    said = (result.stdout + result.stderr).strip()
    if result.rc == 0:
        return None
    if NO_PROBE_TOOL in said:
        raise CheckError(
            f"cannot probe TCP from {Container.of(container)}: it has none of python3, bash, nc, busybox"
        )
    if result.rc in {126, 127}:
        # docker's own answer (our probe exits 0, 1 or 3): the container has no sh to run it with
        raise CheckError(
            f"cannot probe TCP from {Container.of(container)}: {said[:300] or f'exit {result.rc}'}"
        )
    return said[:300] or f"exit {result.rc}"


def last_lines(target: Target, container: str | Container, pattern: str, *, tail: int, keep: int) -> str:
    """The last `keep` lines matching `pattern` (extended regex, any case) of the log's last `tail`."""
    result = target.run(
        "docker logs -t --tail %s -- %s 2>&1 | grep -i -E -e %s | tail -n %s",
        str(tail),
        Container.of(container).name,
        pattern,
        str(keep),
    )
    return result.stdout.rstrip("\n")


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


# A running container's memory as `docker stats` counts it, read from its cgroup on the host in one
# command: the cgroup's folder, usage, limit, inactive file cache, then the host's MemTotal in kB.
# cgroup v2 first, else v1's memory controller; a root or missing path fails (never the host's).
CGROUP_MEMORY = (
    "f=/proc/%s/cgroup; v2=$(sed -n 's|^0::/|/|p' $f); v1=$(sed -n 's|^[0-9]*:memory:/|/|p' $f); "
    'if [ "${v2#/}" ] && [ -r "/sys/fs/cgroup$v2/memory.current" ]; then d="/sys/fs/cgroup$v2"; '
    'echo "$d" && cat "$d/memory.current" "$d/memory.max" && sed -n "s/^inactive_file //p" "$d/memory.stat"; '
    'elif [ "${v1#/}" ]; then d="/sys/fs/cgroup/memory$v1"; '
    'echo "$d" && cat "$d/memory.usage_in_bytes" "$d/memory.limit_in_bytes" && '
    'sed -n "s/^total_inactive_file //p" "$d/memory.stat"; else false; fi && '
    "sed -n 's/^MemTotal: *\\([0-9]*\\) kB$/\\1/p' /proc/meminfo"
)


@dataclass(frozen=True)
class MemoryUse:
    """What `docker stats` shows as MEM USAGE / LIMIT and MEM %."""

    percent: float
    usage: str  # "11.51MiB / 1GiB"


def memory_use(target: Target, container: Container, info: dict[str, Any]) -> MemoryUse | None:
    """The container's memory from its cgroup, else from `docker stats` (None: not in docker stats).

    docker stats samples every container twice (1.3-2.5 s a host); the cgroup files give the same
    numbers (usage minus inactive file cache, over the limit or, without one, the host's memory) in
    one command. Hosts whose cgroup files this shell cannot read keep docker stats.
    """
    found = _cgroup_memory(target, info)
    if found is not None:
        return found
    row = stats(target).get(container.name)
    if row is None:
        return None
    return MemoryUse(float(str(row.get("MemPerc", "0")).rstrip("%") or 0), str(row.get("MemUsage", "?")))


def _cgroup_memory(target: Target, info: dict[str, Any]) -> MemoryUse | None:
    pid, container_id = (info.get("State") or {}).get("Pid"), str(info.get("Id") or "")
    if not isinstance(pid, int) or pid <= 0 or not container_id:
        return None
    result = target.run(CGROUP_MEMORY, str(pid))
    lines = [line.strip() for line in result.stdout.splitlines()]
    # Docker's cgroup folders carry the container's id (/docker/ID, docker-ID.scope): any other
    # folder is not this container's (a daemon in another pid namespace, a pid reused).
    if result.rc != 0 or len(lines) != 5 or container_id not in lines[0]:
        return None
    usage, limit, inactive, host_kb = lines[1:]
    numbers = all(value.isdigit() for value in (usage, inactive, host_kb))
    if not numbers or not (limit.isdigit() or limit == "max"):
        return None
    used = int(usage) - int(inactive) if int(inactive) < int(usage) else int(usage)
    host = int(host_kb) * 1024
    # No limit: v2 says "max", v1 a page-rounded 2**63; docker shows the host's memory then.
    bound = host if limit == "max" or int(limit) > host else int(limit)
    percent = used / bound * 100 if bound else 0.0
    return MemoryUse(percent, f"{byte_size(used)} / {byte_size(bound)}")


def byte_size(size: float) -> str:
    """docker's units.BytesSize: 4 significant digits, binary units ("11.51MiB", "1GiB")."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    index = 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{size:.4g}{units[index]}"


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
