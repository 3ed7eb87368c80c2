"""Compose services (issue 8): checks name `service: web`, the suite finds its containers.

A `docker` stand-in on PATH (selftests/fake_docker.py) holds Map v12's compose
project; `docker exec` runs the command on this machine, so curl, awk, python3 and
od really run "inside". Covered: finding a service's containers by compose's
labels (none, scaled, one-off runs), every container kind by service, the
system's compose_project, container_env (values never leave the host) and the
reverse-proxy diagnosis of a 502.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from map_app import App, Faults, serve
from pydantic import ValidationError

from runbook.checks import container_env, containers, env_files, http, logs, sqlite, tcp
from runbook.checks.container_env import ContainerEnvCheck
from runbook.checks.containers import ContainerCheck
from runbook.checks.env_files import EnvFileCheck
from runbook.checks.http import HttpCheck
from runbook.checks.logs import LogCheck
from runbook.checks.sqlite import SqliteCheck
from runbook.checks.tcp import TcpCheck
from runbook.describe.loader import DescriptionError, load_file
from runbook.describe.model import ContainerRef
from runbook.errors import CheckError, CheckFailed
from runbook.host import docker_host
from runbook.host.target import Target

HERE = Path(__file__).resolve().parent
COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "1.", "remedy": "fix it"}
PROJECT = "map-v12"
SECRET = "s3cret-Planted-9f8e7d"  # a value that must appear in no message


@dataclass
class FakeDocker:
    state: Path

    def add(self, name: str, service: str | None = None, *, status: str = "running", **fields: Any) -> None:
        data = json.loads(self.state.read_text())
        labels = {}
        if service:
            labels = {
                "com.docker.compose.project": fields.pop("project", PROJECT),
                "com.docker.compose.service": service,
                "com.docker.compose.oneoff": "True" if fields.pop("oneoff", False) else "False",
            }
        state = {
            "Status": status,
            "ExitCode": fields.pop("exit_code", 0),
            "StartedAt": "2026-01-02T03:00:00Z",
            **({"Pid": fields.pop("pid")} if "pid" in fields else {}),
        }
        data["containers"].append({"name": name, "labels": labels, "state": state, **fields})
        self.state.write_text(json.dumps(data))


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "docker"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_docker.py"} "$@"\n')
    shim.chmod(0o755)
    state = tmp_path / "docker-state.json"
    state.write_text('{"containers": []}')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(state))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return FakeDocker(state)


def failure(verify: Any, check: Any, target: Target) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        verify(check, target)
    return info.value


def fresh_target() -> Target:
    """A new local:// Target: the compose listing and inspect are cached per run."""
    return Target("local", "local://", command_timeout=10, connect_timeout=5)


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return int(server.getsockname()[1])


# -- a container's memory: its cgroup on the host, docker stats when that cannot be read ------


def memory_check(threshold: float) -> ContainerCheck:
    fields = {"service": "web", "project": PROJECT, "max_memory_percent": threshold}
    return ContainerCheck(**COMMON, id="web-memory", **fields)


def test_memory_is_read_from_the_cgroup_without_docker_stats(docker: FakeDocker, local: Target) -> None:
    """The container's main process is this test's: its cgroup is real (its folder's name stands for
    the container id docker puts there), the fake docker has no stats row."""
    said = local.run(docker_host.CGROUP_MEMORY, str(os.getpid()))
    if said.rc != 0:
        pytest.skip(f"this machine's cgroup memory files are not readable: {said.stderr[-300:]}")
    folder = Path(said.stdout.splitlines()[0]).name
    info = {"Id": folder, "State": {"Pid": os.getpid()}}
    assert docker_host._cgroup_memory(local, info) is not None
    assert docker_host._cgroup_memory(local, {**info, "Id": "0123456789ab"}) is None  # not its folder
    docker.add("map-v12-web-1", "web", pid=os.getpid(), id=folder)
    found = failure(containers.verify, memory_check(0.0001), local).found
    assert re.fullmatch(
        r"service web \(map-v12-web-1\) uses \d+\.\d% of host memory \(no limit set\) "
        r"\(\d[\d.]*[KMGT]?i?B / \d[\d.]*[KMGT]?i?B\) >= 0\.0001%",
        found,
    ), found
    containers.verify(memory_check(100), fresh_target())


def test_memory_falls_back_to_docker_stats(docker: FakeDocker, local: Target) -> None:
    """No process id to read (or no readable cgroup): docker stats' row, its message unchanged."""
    row = {"MemPerc": "91.20%", "MemUsage": "934MiB / 1GiB"}
    docker.add("map-v12-web-1", "web", memory=1 << 30, stats=row)
    assert failure(containers.verify, memory_check(80), local).found == (
        "service web (map-v12-web-1) uses 91.2% of its limit (934MiB / 1GiB) >= 80%"
    )


def test_memory_sizes_are_written_as_docker_stats_writes_them() -> None:
    # Pairs seen side by side on the lab: cgroup usage minus inactive_file, and docker stats' column.
    assert docker_host.byte_size(12066816) == "11.51MiB"
    assert docker_host.byte_size(18272256) == "17.43MiB"
    assert docker_host.byte_size(1 << 30) == "1GiB"
    assert docker_host.byte_size(268435456) == "256MiB"
    assert docker_host.byte_size(512) == "512B"


# -- finding a service's containers --------------------------------------------------------


def test_a_service_is_found_by_compose_labels(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-10", "web")
    docker.add("map-v12-web-2", "web")
    docker.add("map-v12-web-run-1a2b", "web", oneoff=True)  # `docker compose run web ...`
    docker.add("other-web-1", "web", project="other")
    docker.add("map-v12-worker-1", "worker")
    found = docker_host.containers(local, ContainerRef(service="web", project=PROJECT))
    assert [str(container) for container in found] == [
        "service web (map-v12-web-2)",
        "service web (map-v12-web-10)",
    ]


def test_no_container_of_a_service(docker: FakeDocker, local: Target) -> None:
    check = ContainerCheck(**COMMON, id="web-up", service="web", project=PROJECT, state="running")
    error = failure(containers.verify, check, local)
    assert error.found == "no container of compose service web (project map-v12)"


def test_state_of_a_scaled_service_names_the_container_down(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web")
    check = ContainerCheck(**COMMON, id="web-up", service="web", project=PROJECT, state="running")
    containers.verify(check, local)
    docker.add("map-v12-web-2", "web", status="exited", exit_code=3)
    error = failure(containers.verify, check, fresh_target())
    assert error.found == (
        "1 of 2 containers of compose service web (project map-v12) running; "
        "service web (map-v12-web-2) is exited (exit code 3: error)"
    )


def test_other_container_aspects_by_service(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-worker-1", "worker", restart_policy="no")
    check = ContainerCheck(
        **COMMON, id="worker-policy", service="worker", project=PROJECT, restart_policy="unless-stopped"
    )
    assert failure(containers.verify, check, local).found == (
        "restart policy no != unless-stopped (service worker (map-v12-worker-1))"
    )


def test_published_ports_are_exactly_the_runbooks(docker: FakeDocker, local: Target) -> None:
    """`docker ps` PORTS: the bot on 0.0.0.0:8000, Redis published nowhere (internal)."""
    docker.add("bot", ports={"8000/tcp": [{"HostIp": "", "HostPort": "8000"}]})
    docker.add("redis", ports={})
    docker.add("open-redis", ports={"6379/tcp": [{"HostIp": "0.0.0.0", "HostPort": "6379"}]})
    docker.add("local-bot", ports={"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000"}]})
    bot = ContainerCheck(
        **COMMON, id="bot-ports", container="bot", published_ports=["0.0.0.0:8000->8000/tcp"]
    )
    containers.verify(bot, local)
    internal = ContainerCheck(**COMMON, id="redis-ports", container="redis", published_ports=[])
    containers.verify(internal, local)
    exposed = internal.model_copy(update={"container": "open-redis"})
    assert failure(containers.verify, exposed, local).found == (
        "open-redis publishes 0.0.0.0:6379->6379/tcp != no published port (internal only)"
    )
    assert failure(containers.verify, bot.model_copy(update={"container": "local-bot"}), local).found == (
        "local-bot publishes 127.0.0.1:8000->8000/tcp != 0.0.0.0:8000->8000/tcp"
    )


def test_mounts_name_the_volume_at_each_path(docker: FakeDocker, local: Target) -> None:
    volume = {
        "Type": "volume",
        "Name": "cal_radicale-data",
        "Source": "/var/lib/docker/volumes/x",
        "Destination": "/data",
    }
    docker.add("radicale", mounts=[volume])
    docker.add("bare", mounts=[{**volume, "Name": "4f2a9c"}])
    docker.add("none")
    check = ContainerCheck(
        **COMMON, id="radicale-volume", container="radicale", mounts={"/data": "cal_radicale-data"}
    )
    containers.verify(check, local)
    assert failure(containers.verify, check.model_copy(update={"container": "bare"}), local).found == (
        "/data in bare is volume 4f2a9c != cal_radicale-data"
    )
    assert failure(containers.verify, check.model_copy(update={"container": "none"}), local).found == (
        "nothing is mounted at /data in none"
    )


def test_logs_by_service(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web", logs="[INFO] Booting worker\n[INFO] Listening at: http://0.0.0.0:8000")
    check = LogCheck(
        **COMMON, id="gunicorn-up", service="web", project=PROJECT, pattern="Listening at", must_match=True
    )
    logs.verify(check, local)
    errors = LogCheck(
        **COMMON, id="no-errors", service="web", project=PROJECT, pattern="Listening", max_matches=0
    )
    assert failure(logs.verify, errors, local).found == (
        "1 line of service web (map-v12-web-1)'s logs match 'Listening' in the last 24h > 0"
    )


@pytest.mark.slow
def test_tcp_from_a_service(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check = TcpCheck.model_validate(
            {
                **COMMON,
                "id": "web-to-db",
                "address": "127.0.0.1",
                "port": port,
                "from_service": "web",
                "project": PROJECT,
            }
        )
        tcp.verify(check, local)
    found = failure(tcp.verify, check, fresh_target()).found
    assert found.startswith(f"service web (map-v12-web-1) cannot reach 127.0.0.1:{port}: ")
    assert "refused" in found


def image_with(folder: Path, *tools: str, scripts: dict[str, str] | None = None) -> str:
    """A container image's PATH holding only these tools of this machine (and scripts written here)."""
    folder.mkdir()
    for tool in ("sh", *tools):
        if tool == "python3":  # not a pyenv shim: the interpreter itself
            (folder / tool).symlink_to(Path(sys.executable).resolve())
            continue
        found = next(Path(d) / tool for d in os.environ["PATH"].split(":") if (Path(d) / tool).exists())
        (folder / tool).symlink_to(found.resolve())
    for name, text in (scripts or {}).items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return str(folder)


def web_to(port: int) -> TcpCheck:
    fields = {"address": "127.0.0.1", "port": port, "from_service": "nginx", "project": PROJECT}
    return TcpCheck.model_validate({**COMMON, "id": "web-port", **fields})


def test_tcp_from_a_container_without_python3_probes_with_bash(
    docker: FakeDocker, local: Target, tmp_path: Path
) -> None:
    """The official nginx image has no python3: bash's /dev/tcp answers (map-v12's web-port)."""
    docker.add("map-v12-nginx-1", "nginx", path=image_with(tmp_path / "nginx", "bash", "timeout"))
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        tcp.verify(web_to(port), local)
    found = failure(tcp.verify, web_to(port), fresh_target()).found
    assert found.startswith(f"service nginx (map-v12-nginx-1) cannot reach 127.0.0.1:{port}: ")
    assert "refused" in found and found.endswith("(bash /dev/tcp, exit 1)")


@pytest.mark.parametrize("tool", ["nc", "busybox"])
def test_tcp_from_a_container_with_only_nc(
    docker: FakeDocker, local: Target, tmp_path: Path, tool: str
) -> None:
    """An alpine image: nc (or busybox's) -z -w with whole seconds; its failure names the tool."""
    said = tmp_path / "said"
    refuse_port_1 = 'for x; do port=$x; done\n[ "$port" != 1 ] || { echo "Connection refused"; exit 1; }\n'
    script = f'#!/bin/sh\necho "$@" > {said}\n' + refuse_port_1
    docker.add("map-v12-nginx-1", "nginx", path=image_with(tmp_path / "nginx", scripts={tool: script}))
    tcp.verify(web_to(8000), local)
    assert said.read_text().split() == [
        *(["nc"] if tool == "busybox" else []),
        "-z",
        "-w",
        "3",
        "127.0.0.1",
        "8000",
    ]
    found = failure(tcp.verify, web_to(1), fresh_target()).found
    shown = "nc -z" if tool == "nc" else "busybox nc -z"
    assert (
        found
        == f"service nginx (map-v12-nginx-1) cannot reach 127.0.0.1:1: Connection refused ({shown}, exit 1)"
    )


def test_tcp_from_a_container_with_no_probe_tool_is_an_error(
    docker: FakeDocker, local: Target, tmp_path: Path
) -> None:
    """No python3, bash, nc or busybox: the check cannot tell, it never says "cannot reach"."""
    docker.add("map-v12-nginx-1", "nginx", path=image_with(tmp_path / "nginx"))
    with pytest.raises(
        CheckError,
        match=r"from service nginx \(map-v12-nginx-1\): it has none of python3, bash, nc, busybox",
    ):
        tcp.verify(web_to(8000), local)


def test_sqlite_and_env_files_by_service(docker: FakeDocker, local: Target, tmp_path: Path) -> None:
    docker.add("map-v12-bot-1", "bot")
    database = tmp_path / "bot.db"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x)")
    connection.close()
    sqlite.verify(SqliteCheck(**COMMON, id="db", path=str(database), service="bot", project=PROJECT), local)
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"BOT_API_KEY={SECRET}\nSERVER_URL=\n")
    check = EnvFileCheck(
        **COMMON,
        id="env",
        path=str(dotenv),
        required=["BOT_API_KEY", "SERVER_URL"],
        service="bot",
        project=PROJECT,
    )
    error = failure(env_files.verify, check, local)
    assert error.found == f"{dotenv} in service bot (map-v12-bot-1): SERVER_URL is empty (values not shown)"
    assert SECRET not in str(error)


# -- the description: service, project, compose_project -------------------------------------

DESCRIPTION = """\
system: map-v12
runbook: map-v12.md
hosts: {{server: "local://"}}
{project}
checks:
  containers:
    - {{id: web-up, title: web is up, service: web, state: running, severity: P1, section: "1.", remedy: up}}
    - {{id: bot-up, title: bot is up, service: bot, project: map-bot, state: running, severity: P2,
        section: "4.", remedy: up}}
  http:
    - id: nginx
      title: nginx answers
      url: http://127.0.0.1/
      upstream: {{service: web, port: 8000}}
      severity: P1
      section: "1)"
      remedy: logs
"""


def test_compose_project_of_the_system_fills_checks(tmp_path: Path) -> None:
    path = tmp_path / "map-v12.yml"
    path.write_text(DESCRIPTION.format(project="compose_project: map-v12"))
    checks = {check.id: check for check in load_file(path).model.checks.all()}
    assert checks["web-up"].container_ref == ContainerRef(service="web", project="map-v12")
    assert checks["bot-up"].container_ref == ContainerRef(service="bot", project="map-bot")
    upstream = checks["nginx"].upstream  # type: ignore[attr-defined]
    assert upstream.container_ref == ContainerRef(service="web", project="map-v12")


def test_a_service_without_a_project_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "map-v12.yml"
    path.write_text(DESCRIPTION.format(project=""))
    with pytest.raises(
        DescriptionError, match=r"checks\.containers\[0\] \(id web-up\): compose service 'web' has no"
    ):
        load_file(path)


def test_container_and_service_are_one_or_the_other() -> None:
    with pytest.raises(ValidationError, match="set container or service, not both"):
        ContainerCheck(**COMMON, id="x", container="web", service="web", state="running")
    with pytest.raises(ValidationError, match=r"set container \(a container name\) or service"):
        ContainerCheck(**COMMON, id="x", state="running")
    with pytest.raises(ValidationError, match="set from_container or from_service, not both"):
        TcpCheck.model_validate(
            {**COMMON, "id": "x", "address": "db", "port": 5432, "from_container": "a", "from_service": "web"}
        )
    with pytest.raises(ValidationError, match="String should match pattern"):
        ContainerCheck(**COMMON, id="x", service="-web", state="running")


# -- container_env ---------------------------------------------------------------------------

MAP_ENV = [
    f"SECRET_KEY={SECRET}",
    "DATABASE_URL=postgresql://map:pw@db:5432/map",
    "REDIS_URL=redis://redis:6379/0",
    "SESSION_COOKIE_SECURE=1",
    "METRICS_ALLOW_PUBLIC=0",
    f"BOT_API_KEY={SECRET}-bot",
    "PATH=/usr/local/bin:/usr/bin",
]


def env_check(**fields: Any) -> ContainerEnvCheck:
    return ContainerEnvCheck(**{**COMMON, "id": "web-env", "service": "web", "project": PROJECT, **fields})


def test_container_env_green(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web", env=MAP_ENV)
    docker.add("map-v12-bot-1", "bot", env=[f"BOT_API_KEY={SECRET}-bot"])
    container_env.verify(env_check(required=["SECRET_KEY", "DATABASE_URL", "REDIS_URL"]), local)
    container_env.verify(env_check(values={"SESSION_COOKIE_SECURE": "1", "METRICS_ALLOW_PUBLIC": "0"}), local)
    same_as = {"service": "bot", "project": PROJECT, "keys": ["BOT_API_KEY"]}
    container_env.verify(env_check(same_as=same_as), local)


def assert_no_secret(error: CheckFailed) -> None:
    text = " ".join([str(error), error.expected, error.found, *error.evidence.values()])
    assert SECRET not in text
    assert "pw@" not in text


def test_container_env_missing_empty_placeholder(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web", env=["SECRET_KEY=changeme", "DATABASE_URL=", f"OTHER={SECRET}"])
    error = failure(
        container_env.verify, env_check(required=["SECRET_KEY", "DATABASE_URL", "REDIS_URL"]), local
    )
    assert error.found == (
        "service web (map-v12-web-1): SECRET_KEY is placeholder; DATABASE_URL is empty; REDIS_URL missing "
        "(values not shown)"
    )
    assert_no_secret(error)


def test_container_env_flags_show_flag_values_only(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web", env=["SESSION_COOKIE_SECURE=0", f"METRICS_ALLOW_PUBLIC={SECRET}"])
    check = env_check(
        values={"SESSION_COOKIE_SECURE": "1", "METRICS_ALLOW_PUBLIC": "0", "ENABLE_METRICS": "1"}
    )
    error = failure(container_env.verify, check, local)
    assert error.found == (
        "service web (map-v12-web-1): SESSION_COOKIE_SECURE=0 != 1; "
        "METRICS_ALLOW_PUBLIC=another value (not shown) != 0; ENABLE_METRICS missing (expected 1)"
    )
    assert_no_secret(error)


@pytest.mark.slow
def test_container_env_two_containers_disagree_without_revealing(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web", env=MAP_ENV)
    docker.add("map-v12-bot-1", "bot", env=[f"BOT_API_KEY={SECRET}-old"])
    error = failure(
        container_env.verify,
        env_check(same_as={"service": "bot", "project": PROJECT, "keys": ["BOT_API_KEY"]}),
        local,
    )
    assert error.found == (
        "BOT_API_KEY differs between service web (map-v12-web-1) and service bot (map-v12-bot-1) "
        "(values not shown)"
    )
    assert_no_secret(error)
    docker.add("map-v12-duty-1", "duty", env=[])
    error = failure(
        container_env.verify,
        env_check(same_as={"service": "duty", "project": PROJECT, "keys": ["BOT_API_KEY"]}),
        fresh_target(),
    )
    assert error.found.startswith("BOT_API_KEY missing in service duty (map-v12-duty-1) between ")


def test_container_env_optional_keys_and_unset_defaults_pass_unset(docker: FakeDocker, local: Target) -> None:
    """'рекомендуется' / 'по умолчанию 0': unset passes."""
    docker.add("map-v12-web-1", "web", env=[f"SECRET_KEY={SECRET}", "SESSION_COOKIE_SECURE=1"])
    docker.add("map-v12-bot-1", "bot", env=[])
    container_env.verify(env_check(required=["SECRET_KEY"], optional=["BOT_API_KEY"]), local)
    container_env.verify(env_check(values={"METRICS_ALLOW_PUBLIC": "0"}, unset_ok=True), local)
    same_as = {"service": "bot", "project": PROJECT, "keys": ["BOT_API_KEY"]}
    container_env.verify(env_check(same_as=same_as, unset_ok=True), local)
    with pytest.raises(ValidationError, match="optional: goes with required:"):
        env_check(values={"A": "1"}, optional=["B"])
    with pytest.raises(ValidationError, match="unset_ok: goes with values: or same_as:"):
        env_check(required=["A"], unset_ok=True)


@pytest.mark.slow
def test_container_env_optional_keys_and_unset_defaults_are_judged_when_set(
    docker: FakeDocker, local: Target
) -> None:
    env = [f"SECRET_KEY={SECRET}", "BOT_API_KEY=changeme", "METRICS_ALLOW_PUBLIC=1"]
    docker.add("map-v12-web-1", "web", env=env)
    docker.add("map-v12-bot-1", "bot", env=[])
    error = failure(container_env.verify, env_check(required=["SECRET_KEY"], optional=["BOT_API_KEY"]), local)
    assert error.found == "service web (map-v12-web-1): BOT_API_KEY is placeholder (values not shown)"
    check = env_check(values={"METRICS_ALLOW_PUBLIC": "0"}, unset_ok=True)
    error = failure(container_env.verify, check, fresh_target())
    assert error.found == "service web (map-v12-web-1): METRICS_ALLOW_PUBLIC=1 != 0"
    same_as = {"service": "bot", "project": PROJECT, "keys": ["BOT_API_KEY"]}
    error = failure(container_env.verify, env_check(same_as=same_as, unset_ok=True), fresh_target())
    assert error.found.startswith("BOT_API_KEY missing in service bot (map-v12-bot-1) between ")


def test_container_env_values_stay_on_the_host(docker: FakeDocker, local: Target) -> None:
    """What travels back from the host: key, state, a flag value or '-', a salted hash."""
    docker.add("map-v12-web-1", "web", env=MAP_ENV)
    found = container_env.read_env(
        local,
        docker_host.Container("map-v12-web-1", "web"),
        ["SECRET_KEY", "SESSION_COOKIE_SECURE"],
        "^x$",
        "salt",
    )
    assert found["SECRET_KEY"].state == "set" and found["SECRET_KEY"].shown is None
    assert found["SESSION_COOKIE_SECURE"].shown == "1"
    assert found["SECRET_KEY"].digest == container_env.salted("salt", SECRET)
    assert SECRET not in repr(found)


def test_docker_inspect_never_brings_the_environment(docker: FakeDocker, local: Target) -> None:
    docker.add("map-v12-web-1", "web", env=MAP_ENV)
    info = docker_host.inspect(local, "map-v12-web-1")
    assert info is not None and "Env" not in info["Config"]
    assert ".Config.Env" not in docker_host.INSPECT_FIELDS


# -- http inside a service, and the reverse proxy's 502 ----------------------------------------


@pytest.fixture
def api() -> Iterator[tuple[Faults, str]]:
    app = App()
    for base in serve(app):
        yield app.faults, base


@pytest.mark.slow
def test_http_inside_each_container_of_a_service(
    docker: FakeDocker, local: Target, api: tuple[Faults, str]
) -> None:
    faults, base = api
    docker.add("map-v12-web-1", "web")
    check = HttpCheck(
        **COMMON,
        id="ready",
        url=f"{base}/ready",
        service="web",
        project=PROJECT,
        json_conditions=[{"path": "components.redis", "equals": "ok"}],
    )
    assert check.via == "host"
    http.verify(check, local)
    faults.redis = "error"
    local.forget_facts()  # the next run asks again (one run shares one answer)
    found = failure(http.verify, check, local).found
    assert found.startswith(f"status 503 != 200 (GET {base}/ready (inside service web (map-v12-web-1)), ")


def ready_inside_web(base: str) -> HttpCheck:
    fields = {"url": f"{base}/ready", "service": "web", "project": PROJECT}
    return HttpCheck(
        **COMMON, id="ready", **fields, json_conditions=[{"path": "components.redis", "equals": "ok"}]
    )


def test_http_inside_a_container_without_curl_goes_through_python3(
    docker: FakeDocker, local: Target, api: tuple[Faults, str], tmp_path: Path
) -> None:
    """A slim Python image has no curl (map-v12's metrics-local runs inside web): python3 asks."""
    faults, base = api
    docker.add("map-v12-web-1", "web", path=image_with(tmp_path / "web", "python3"))
    http.verify(ready_inside_web(base), local)
    faults.redis = "error"
    found = failure(http.verify, ready_inside_web(base), fresh_target()).found
    assert found.startswith(f"status 503 != 200 (GET {base}/ready (inside service web (map-v12-web-1)), ")
    closed = f"http://127.0.0.1:{closed_port()}"
    found = failure(http.verify, ready_inside_web(closed), fresh_target()).found
    assert "refused" in found and found.endswith("(inside service web (map-v12-web-1))")


def test_http_inside_a_container_with_neither_curl_nor_python3_is_an_error(
    docker: FakeDocker, local: Target, tmp_path: Path
) -> None:
    docker.add("map-v12-web-1", "web", path=image_with(tmp_path / "web"))
    with pytest.raises(
        CheckError, match=r"inside service web \(map-v12-web-1\): it has neither curl nor python3"
    ):
        http.verify(ready_inside_web("http://127.0.0.1:8000"), local)


def proxy_check(base: str, port: int) -> HttpCheck:
    return HttpCheck(
        **COMMON,
        id="nginx",
        url=f"{base}/proxied",
        upstream={"service": "web", "project": PROJECT, "port": port},
    )


GUNICORN_FAILED = (
    "[INFO] Starting gunicorn 22.0.0\n"
    "[ERROR] Exception in worker process\n"
    "KeyError: 'DATABASE_URL'\n"
    "[ERROR] Worker failed to boot.\n"
)


def test_502_says_the_upstream_exited(docker: FakeDocker, local: Target, api: tuple[Faults, str]) -> None:
    faults, base = api
    faults.upstream_down = True
    docker.add("map-v12-web-1", "web", status="exited", exit_code=3, logs=GUNICORN_FAILED)
    error = failure(http.verify, proxy_check(base, 8000), local)
    assert error.found.startswith(f"status 502 != 200 (GET {base}/proxied, ")
    assert error.found.endswith(
        "s); upstream web:8000 down: service web (map-v12-web-1) is not running: "
        "exited (exit code 3: error); its log: 2026-01-02T03:00:00.000000000Z [ERROR] Worker failed to boot."
    )
    assert "KeyError: 'DATABASE_URL'" in error.evidence["last error lines of service web (map-v12-web-1)"]


def test_502_says_nothing_listens(docker: FakeDocker, local: Target, api: tuple[Faults, str]) -> None:
    faults, base = api
    faults.upstream_down = True
    docker.add("map-v12-web-1", "web")
    port = closed_port()
    found = failure(http.verify, proxy_check(base, port), local).found
    assert f"; upstream web:{port} down: nothing accepts connections on port {port} inside " in found
    assert found.endswith("refused (python3, exit 1)")


def test_502_with_the_upstream_up(docker: FakeDocker, local: Target, api: tuple[Faults, str]) -> None:
    faults, base = api
    faults.upstream_down = True
    docker.add("map-v12-web-1", "web")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        found = failure(http.verify, proxy_check(base, port), local).found
    assert found.endswith(
        f"; upstream web:{port} is up and accepts connections: the proxy's own configuration, its network "
        "to the upstream, or timeouts"
    )


def test_502_with_no_upstream_container(docker: FakeDocker, local: Target, api: tuple[Faults, str]) -> None:
    faults, base = api
    faults.upstream_down = True
    found = failure(http.verify, proxy_check(base, 8000), local).found
    assert found.endswith("; upstream web:8000 down: no container of compose service web (project map-v12)")


def test_the_proxy_answering_is_not_diagnosed(
    docker: FakeDocker, local: Target, api: tuple[Faults, str]
) -> None:
    _, base = api
    http.verify(proxy_check(base, 8000), local)  # 200: docker is not even asked


def test_a_container_restarted_moments_ago_is_looked_at_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a crash loop docker shows 'running' between a start and the next crash: a state read
    within SETTLE_SECONDS of a policy restart is read once more after it, and a stable one is not."""
    from datetime import UTC, datetime, timedelta

    from runbook.checks import containers as containers_kind
    from runbook.host.docker_host import Container

    def info(started: datetime, status: str = "running", restarts: int = 2) -> dict[str, Any]:
        stamp = started.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        return {"RestartCount": restarts, "State": {"Status": status, "Running": status == "running",
                                                    "StartedAt": stamp}}  # fmt: skip

    crashed = info(datetime.now(UTC), status="restarting")
    monkeypatch.setattr(containers_kind, "SETTLE_SECONDS", 0.3)
    monkeypatch.setattr(containers_kind.docker_host, "events", lambda *args: [])
    monkeypatch.setattr(containers_kind.docker_host, "read_inspect", lambda target, name: crashed)
    just_started = info(datetime.now(UTC))
    assert containers_kind._settled(None, Container("xray"), just_started) is crashed  # type: ignore[arg-type]
    for stable in (info(datetime.now(UTC) - timedelta(seconds=5)), info(datetime.now(UTC), restarts=0)):
        assert containers_kind._settled(None, Container("xray"), stable) is stable  # type: ignore[arg-type]


def test_a_restart_after_a_long_crashing_run_is_waited_for_as_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a slow host an app may crash 4 s after its start: a restart 3.5 s old is not yet 'up'.
    The wait follows the longest recent crashed run's length from docker events (three times it,
    plus 2 s: CI saw one failing boot outlast 1.5 times the one before); a crash seen meanwhile
    ends it at once;
    an operator's restart (a stop between die and start) is not waited for beyond SETTLE_SECONDS."""
    from datetime import UTC, datetime, timedelta

    from runbook.checks import containers as containers_kind
    from runbook.host.docker_host import Container

    now = datetime.now(UTC)
    started = (now - timedelta(seconds=0.35)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    current = {"Id": "c0ffee", "RestartCount": 7, "State": {"Status": "running", "Running": True,
                                                            "StartedAt": started}}  # fmt: skip
    crashed = {"RestartCount": 7, "State": {"Status": "restarting", "Restarting": True}}

    def event(action: str, seconds_ago: float, code: str | None = None) -> dict[str, Any]:
        attributes = {"exitCode": code} if code is not None else {}
        nano = int((now - timedelta(seconds=seconds_ago)).timestamp() * 1e9)
        return {"Action": action, "timeNano": nano, "Actor": {"Attributes": attributes}}

    class Clock:
        """A fake clock for the module: sleeping moves it on, so the waits are counted, not waited."""

        def __init__(self) -> None:
            self.now, self.slept = 1000.0, 0.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds
            self.slept += seconds

    crash_loop = [event("start", 5.0), event("die", 0.6, "1"), event("start", 0.35)]
    # an 8 s crashed run before a 0.8 s one: the longer sets the wait
    longer_before = [
        event("start", 15.0), event("die", 7.0, "3"), event("start", 6.8), event("die", 6.0, "1"),
        event("start", 0.35),
    ]  # fmt: skip
    by_operator = [event("start", 5.0), event("die", 0.6, "0"), event("stop", 0.6), event("start", 0.35)]
    monkeypatch.setattr(containers_kind, "SETTLE_SECONDS", 0.3)
    monkeypatch.setattr(containers_kind, "MAX_SETTLE_SECONDS", 30.0)
    for events, later, slept in (
        (crash_loop, crashed, containers_kind.SETTLE_POLL_SECONDS),  # crashed at the first read
        (crash_loop, current, (5.0 - 0.6) * 3 + 2 - 0.35),  # still up: waited to the end
        (longer_before, current, (15.0 - 7.0) * 3 + 2 - 0.35),
        (by_operator, crashed, 0.0),
    ):
        clock = Clock()
        monkeypatch.setattr(containers_kind, "time", clock)
        monkeypatch.setattr(containers_kind.docker_host, "events", lambda *args, events=events: events)
        monkeypatch.setattr(
            containers_kind.docker_host, "read_inspect", lambda target, name, later=later: later
        )
        found = containers_kind._settled(None, Container("web"), current)  # type: ignore[arg-type]
        assert found is (later if slept else current)
        assert clock.slept == pytest.approx(slept, abs=0.05)


def test_a_container_running_at_both_looks_but_restarted_between_is_in_a_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second look can land in the crash loop's next moment of 'running': RestartCount tells."""
    from datetime import UTC, datetime

    from runbook.checks import containers as containers_kind
    from runbook.host.docker_host import Container

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"

    def info(restarts: int) -> dict[str, Any]:
        return {"RestartCount": restarts, "State": {"Status": "running", "Running": True, "StartedAt": stamp}}

    check = containers_kind.ContainerCheck(
        **COMMON, id="xray-running", container="hexenvpn-xray", state="running"
    )
    monkeypatch.setattr(containers_kind, "SETTLE_SECONDS", 0.05)
    monkeypatch.setattr(containers_kind.docker_host, "events", lambda *args: [])
    monkeypatch.setattr(containers_kind.docker_host, "inspect_or_fail", lambda target, container: info(4))
    monkeypatch.setattr(containers_kind.docker_host, "read_inspect", lambda target, name: info(5))
    with pytest.raises(CheckFailed) as failed:
        containers_kind._state(check, None, [Container("hexenvpn-xray")])  # type: ignore[arg-type]
    assert failed.value.found == (
        "hexenvpn-xray is restarting in a loop: running at one look, restarted again by its restart "
        "policy before the next (RestartCount 4 -> 5)"
    )
    monkeypatch.setattr(containers_kind.docker_host, "read_inspect", lambda target, name: info(4))
    containers_kind._state(check, None, [Container("hexenvpn-xray")])  # type: ignore[arg-type]


def test_a_137_after_an_operator_stop_is_no_crash_and_an_oom_kill_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runbook ai-calendar-assistant l.205's `docker-compose restart telegram-bot` ends a PID 1 that
    ignores SIGTERM with SIGKILL: docker logs kill(15), kill(9), die 137, stop, start. That exit 137
    is the operator's, not an OOM kill (EXIT_MEANING[137]); a die 137 with no kill before it and no
    stop after it (the kernel's OOM killer, docker restarting it) still is one."""
    from runbook.checks import containers as containers_kind
    from runbook.host.docker_host import Container

    def event(action: str, second: int, **attributes: str) -> dict[str, Any]:
        return {"Action": action, "timeNano": second * 10**9, "Actor": {"Attributes": attributes}}

    compose_restart = [
        event("kill", 10, signal="15"), event("kill", 20, signal="9"), event("die", 20, exitCode="137"),
        event("stop", 20), event("start", 21),
    ]  # fmt: skip
    docker_kill = [event("kill", 30, signal="9"), event("die", 30, exitCode="137")]
    oom_kill = [event("oom", 40), event("die", 40, exitCode="137"), event("start", 41)]
    sigkill_no_oom_event = [event("die", 50, exitCode="137"), event("start", 51)]
    reload_then_killed = [event("kill", 60, signal="1"), event("die", 70, exitCode="137"), event("start", 71)]
    check = containers_kind.ContainerCheck(
        **COMMON, id="bot-no-crash", container="telegram-bot", no_crash_within="7d"
    )
    monkeypatch.setattr(
        containers_kind.docker_host,
        "inspect_or_fail",
        lambda target, container: {"Id": "c0ffee", "State": {}},
    )
    for events in (compose_restart, docker_kill, compose_restart + docker_kill):
        monkeypatch.setattr(containers_kind.docker_host, "events", lambda *args, events=events: events)
        containers_kind._no_crash(check, None, Container("telegram-bot"))  # type: ignore[arg-type]
    stops: list[str] = []
    killed = "exit 137 (killed (SIGKILL: out of memory, or a stop that timed out)) at 1970-01-01"
    for events, found in (
        (compose_restart + oom_kill, f"2 crash(es) in the last 7d: OOM kill at 1970-01-01 00:00:40 UTC; "
                                     f"{killed} 00:00:40 UTC"),
        (sigkill_no_oom_event, f"1 crash(es) in the last 7d: {killed} 00:00:50 UTC"),
        (reload_then_killed, f"1 crash(es) in the last 7d: {killed} 00:01:10 UTC"),
    ):  # fmt: skip
        monkeypatch.setattr(containers_kind.docker_host, "events", lambda *args, events=events: events)
        with pytest.raises(CheckFailed) as failed:
            containers_kind._no_crash(check, None, Container("telegram-bot"))  # type: ignore[arg-type]
        assert failed.value.found == f"telegram-bot: {found}"
        stops.append(failed.value.evidence.get("operator stops (information)", ""))
    assert stops == [
        "exit 137 at 1970-01-01 00:00:20 UTC: a stop the operator asked for (kill/stop), timed out",
        "",
        "",
    ]
