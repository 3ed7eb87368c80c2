"""The VPN runbook's kinds, green and red, on local files, a loopback sshd and a local v2ray.

config_users reads an xray config.json (valid JSON, names unique ignoring case, a user present,
a replica's list equal to the master's, the program's own config test); vless_probe runs a real
VLESS client (Debian's v2ray) against a real VLESS server on loopback and fetches a loopback URL
through it. Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runbook.checks import config_users, containers, tcp, vless_probe
from runbook.checks.config_users import ConfigUsersCheck
from runbook.checks.containers import ContainerCheck
from runbook.checks.tcp import TcpCheck
from runbook.checks.vless_probe import VlessProbeCheck
from runbook.errors import CheckFailed
from runbook.host.target import Target
from selftests import test_kinds_compose
from selftests.data_servers import free_port
from selftests.sshd import LoopbackSshd
from selftests.test_kinds_compose import FakeDocker

COMMON: dict[str, Any] = {
    "title": "a check",
    "severity": "P1",
    "section": "2) dup",
    "remedy": "vless-del-user",
}
V2RAY = shutil.which("v2ray")
docker = test_kinds_compose.docker  # the `docker` stand-in fixture, by its name


def user(name: str, key: str = "email") -> dict[str, Any]:
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name.lower())), key: name, "level": 0}


def xray_config(clients: list[dict[str, Any]], port: int = 443) -> dict[str, Any]:
    inbound = {
        "listen": "127.0.0.1",
        "port": port,
        "protocol": "vless",
        "settings": {"clients": clients, "decryption": "none"},
        "streamSettings": {"network": "tcp"},
    }
    return {"log": {"loglevel": "warning"}, "inbounds": [inbound], "outbounds": [{"protocol": "freedom"}]}


def write(folder: Path, name: str, document: Any) -> Path:
    path = folder / name
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2))
    return path


def config_check(path: Path, **fields: Any) -> ConfigUsersCheck:
    return ConfigUsersCheck.model_validate({**COMMON, "id": "c", "file": str(path), **fields})


def failure(check: Any, target: Target, verify: Any = config_users.verify) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        verify(check, target)
    return info.value


def targets(specs: dict[str, str]) -> dict[str, Target]:
    made: dict[str, Target] = {}
    for name, spec in specs.items():
        made[name] = Target(
            name, spec, command_timeout=10, connect_timeout=5, peers=lambda other: made[other]
        )
    return made


# ---- config_users -----------------------------------------------------------------------------
def test_valid_json(tmp_path: Path, local: Target) -> None:
    good = write(tmp_path, "good.json", xray_config([user("test1")]))
    config_users.verify(config_check(good, valid_json=True), local)
    bad = write(tmp_path, "bad.json", '{"inbounds": [{"settings": {"clients": [\n')
    failed = failure(config_check(bad, valid_json=True), local)
    assert failed.expected == f"{bad} is valid JSON"
    assert "is not valid JSON: Expecting value (line 2, column 1)" in failed.found


def test_unreadable_file_is_named(tmp_path: Path, local: Target) -> None:
    failed = failure(config_check(tmp_path / "none.json", valid_json=True), local)
    assert f"cannot read {tmp_path / 'none.json'} on local" in failed.found


def test_config_in_a_container_is_read_while_it_restarts(tmp_path: Path, docker: FakeDocker) -> None:
    """Copied out (docker cp), not exec'd: a looping xray's config still names its duplicates."""
    docker.add("hexenvpn-xray", status="restarting", exit_code=23)
    bad = write(tmp_path, "config.json", xray_config([user("test1"), user("Test1")]))
    local = Target("m", "local://", command_timeout=10, connect_timeout=5)
    failed = failure(config_check(bad, unique_names=True, container="hexenvpn-xray"), local)
    assert "'test1' and 'Test1'" in failed.found
    gone = failure(config_check(tmp_path / "none.json", valid_json=True, container="hexenvpn-xray"), local)
    said = "Error response from daemon: Could not find"
    assert f"cannot read {tmp_path / 'none.json'} on m: {said}" in gone.found


def test_unique_names_ignoring_case_names_both_spellings(tmp_path: Path, local: Target) -> None:
    good = write(tmp_path, "good.json", xray_config([user("test1"), user("alice")]))
    config_users.verify(config_check(good, unique_names=True), local)
    bad = write(tmp_path, "bad.json", xray_config([user("test1"), user("alice"), user("Test1")]))
    failed = failure(config_check(bad, unique_names=True), local)
    assert failed.expected == "no two users named alike ignoring case"
    assert "'test1' and 'Test1'" in failed.found
    assert "User Test1 already exists" in failed.found


def test_names_from_name_key_and_another_path(tmp_path: Path, local: Target) -> None:
    document = {"users": [user("Bob", "name"), user("bob", "name")]}
    path = write(tmp_path, "users.json", document)
    failed = failure(config_check(path, unique_names=True, users_at="users", name_keys=["name"]), local)
    assert "'Bob' and 'bob'" in failed.found


def test_has_user(tmp_path: Path, local: Target) -> None:
    path = write(tmp_path, "c.json", xray_config([user("test1"), user("alice")]))
    config_users.verify(config_check(path, has_user="test1"), local)
    failed = failure(config_check(path, has_user="bob"), local)
    assert failed.expected == f"user bob in {path}"
    assert "user bob missing from" in failed.found and "(2 users: test1, alice)" in failed.found


def test_same_users_as_names_missing_and_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every host is local:// here: each one reads its own folder's config.json for the path.
    lists = {"master": ["test1", "alice", "bob"], "twin": ["test1", "alice", "bob"]}
    lists["replica"] = ["test1", "alice", "mallory"]
    for name, users in lists.items():
        (tmp_path / name).mkdir()
        write(tmp_path / name, "config.json", xray_config([user(who) for who in users]))
    reads = config_users.read

    def per_host(target: Target, file: str, container: str | None = None) -> str:
        return reads(target, str(tmp_path / target.name / "config.json"), container)

    monkeypatch.setattr(config_users, "read", per_host)
    hosts = targets({name: "local://" for name in lists})
    check = config_check(Path("/usr/local/etc/xray/config.json"), same_users_as="master")
    config_users.verify(check, hosts["master"])  # the reference equals itself
    config_users.verify(check, hosts["twin"])  # the same users: in sync
    failed = failure(check, hosts["replica"])
    assert failed.expected == "the same users as master (3)"
    assert failed.found == "replica differs from master: missing bob; extra mallory"
    (tmp_path / "master" / "config.json").write_text("{")
    failed = failure(check, hosts["replica"])
    assert failed.found.startswith(
        "cannot compare with master: /usr/local/etc/xray/config.json on master is not"
    )


def test_config_test_command_is_argv_with_the_file_last(tmp_path: Path, local: Target) -> None:
    path = write(tmp_path, "c.json", xray_config([user("test1")]))
    config_users.verify(config_check(path, test_command=["true"]), local)
    # `;true` stays inside one argument: ls looks for that file (had it run, `true` would exit 0).
    failed = failure(config_check(path, test_command=["ls", "--", "x;true"]), local)
    assert "x;true" in failed.found and "exit 2" in failed.found
    failed = failure(config_check(path, test_command=["false"]), local)
    assert failed.expected == f"`false {path}` exits 0 (the config passes its test)"
    assert failed.found.startswith(f"`false {path}` on local exit 1")
    with pytest.raises(ValueError, match="the first element is the program"):
        config_check(path, test_command=["-oProxyCommand=x"])


@pytest.mark.skipif(V2RAY is None, reason="no v2ray on this machine")
def test_config_test_with_v2ray_refuses_a_duplicate_by_case(tmp_path: Path, local: Target) -> None:
    port = free_port()
    good = write(tmp_path, "good.json", xray_config([user("test1"), user("alice")], port))
    config_users.verify(config_check(good, test_command=["v2ray", "-test", "-config"]), local)
    bad = write(tmp_path, "bad.json", xray_config([user("test1"), user("Test1")], port))
    failed = failure(config_check(bad, test_command=["v2ray", "-test", "-config"]), local)
    assert "already exists" in failed.found, failed.found


@pytest.mark.slow
def test_config_users_over_ssh(tmp_path: Path, sshd: LoopbackSshd) -> None:
    path = write(tmp_path, "c.json", xray_config([user("test1"), user("TEST1")]))
    target = Target("replica", sshd.spec("ssh"), command_timeout=10, connect_timeout=5)
    config_users.verify(config_check(path, has_user="test1"), target)
    assert "'test1' and 'TEST1'" in failure(config_check(path, unique_names=True), target).found


# ---- vless_probe: a real VLESS server and client, both v2ray, on loopback ------------------------
class Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"probe ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def probe_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/generate_204"
    server.shutdown()


@pytest.fixture
def vless_server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    assert V2RAY is not None
    port = free_port()
    config = write(tmp_path, "server.json", xray_config([user("test1"), user("alice")], port))
    process = subprocess.Popen(
        [V2RAY, "-config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield config, port
    finally:
        process.kill()
        process.wait(timeout=5)


def probe_check(config: Path, port: int, url: str, **fields: Any) -> VlessProbeCheck:
    given = {"id": "p", "user": "test1", "file": str(config), "address": "127.0.0.1", "port": port}
    return VlessProbeCheck.model_validate({**COMMON, **given, "probe_url": url, "timeout": 8, **fields})


@pytest.mark.skipif(V2RAY is None, reason="no v2ray on this machine")
def test_vless_probe_gets_through(vless_server: tuple[Path, int], probe_url: str, local: Target) -> None:
    config, port = vless_server
    started = time.monotonic()
    vless_probe.verify(probe_check(config, port, probe_url, client="v2ray"), local)
    assert time.monotonic() - started < 8


@pytest.mark.skipif(V2RAY is None, reason="no v2ray on this machine")
def test_vless_probe_red_when_the_server_does_not_know_the_id(
    vless_server: tuple[Path, int], probe_url: str, local: Target, tmp_path: Path
) -> None:
    _, port = vless_server
    # The runner's copy of the config has another id for test1 than the server's.
    other = write(tmp_path, "other.json", xray_config([{"id": str(uuid.uuid4()), "email": "test1"}]))
    started = time.monotonic()
    failed = failure(probe_check(other, port, probe_url, timeout=4), local, vless_probe.verify)
    assert time.monotonic() - started < 6
    assert failed.expected == f"user test1 gets through 127.0.0.1:{port} to {probe_url} (200)"
    assert failed.found.startswith(f"through 127.0.0.1:{port}: ")
    assert failed.slow  # looked at again a second later before it is red (run.verify)


@pytest.mark.slow
@pytest.mark.skipif(V2RAY is None, reason="no v2ray on this machine")
def test_vless_probe_red_when_the_inbound_is_down(probe_url: str, local: Target, tmp_path: Path) -> None:
    port = free_port()  # nothing listens
    config = write(tmp_path, "c.json", xray_config([user("test1")], port))
    failed = failure(probe_check(config, port, probe_url, timeout=4), local, vless_probe.verify)
    assert failed.found.startswith(f"through 127.0.0.1:{port}: ")


def test_vless_probe_user_missing(tmp_path: Path, local: Target, probe_url: str) -> None:
    if V2RAY is None:
        pytest.skip("no v2ray on this machine")
    config = write(tmp_path, "c.json", xray_config([user("alice")]))
    failed = failure(probe_check(config, 443, probe_url, user="test1"), local, vless_probe.verify)
    assert failed.found == f"user test1 is not in {config} on local: nothing to probe with"


def test_vless_probe_skips_without_a_client(
    tmp_path: Path, local: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    config = write(tmp_path, "c.json", xray_config([user("test1")]))
    with pytest.raises(pytest.skip.Exception, match=r"no VLESS client on the runner \(xray or v2ray\)"):
        vless_probe.verify(probe_check(config, 443, "http://127.0.0.1:9/"), local)


# ---- the runbook's container facts, by the existing kinds -----------------------------------------
def container_check(**fields: Any) -> ContainerCheck:
    return ContainerCheck.model_validate({**COMMON, "id": "x", "container": "hexenvpn-xray", **fields})


def test_log_rotation(docker: FakeDocker) -> None:
    rotated = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    docker.add("hexenvpn-xray", log_config=rotated)
    check = container_check(log_options={"max-size": "10m", "max-file": "3"})
    containers.verify(check, Target("m", "local://", command_timeout=10, connect_timeout=5))
    docker.add("hexenvpn-bot", log_config={"Type": "json-file", "Config": {}})
    check = container_check(container="hexenvpn-bot", log_options={"max-size": "10m", "max-file": "3"})
    failed = failure(check, Target("m", "local://", command_timeout=10, connect_timeout=5), containers.verify)
    assert failed.expected == "log driver json-file max-file=3 max-size=10m"
    assert failed.found == "hexenvpn-bot logs with json-file no options != json-file max-file=3 max-size=10m"


def test_restart_loop_carries_the_last_lines_of_docker_logs(docker: FakeDocker) -> None:
    logs = "\n".join([f"line {n}" for n in range(100)] + ["Failed to start: User Test1 already exists"])
    docker.add("hexenvpn-xray", status="restarting", exit_code=23, logs=logs)
    check = container_check(state="running", logs_on_failure=80)
    failed = failure(check, Target("m", "local://", command_timeout=10, connect_timeout=5), containers.verify)
    (tail,) = failed.evidence.values()
    assert tail.splitlines()[-1] == "Failed to start: User Test1 already exists"
    assert len(tail.splitlines()) == 80 and "line 20\n" not in tail


def test_tcp_defaults_to_the_hosts_address(sshd: LoopbackSshd) -> None:
    check = TcpCheck.model_validate({**COMMON, "id": "port", "port": sshd.port})
    tcp.verify(check, Target("replica", sshd.spec("ssh"), command_timeout=10, connect_timeout=5))
    closed = free_port()
    failed = failure(
        TcpCheck.model_validate({**COMMON, "id": "port", "port": closed}),
        Target("replica", sshd.spec("ssh"), command_timeout=10, connect_timeout=5),
        tcp.verify,
    )
    assert failed.expected == f"127.0.0.1:{closed} accepts TCP connections"
