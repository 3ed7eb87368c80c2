"""`sockets`: real listeners made here, read back through `ss` on a local:// host.

Green when the port listens where the description says (or not at all), red with the
listener's address when it is exposed; `from_runner` connects to this machine's own
outside address (a lab-range address in a network namespace of the test's own), so a port on
0.0.0.0 is reached and one on 127.0.0.1 is not.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks import sockets
from runbook.checks.sockets import SocketCheck
from runbook.errors import CheckError, CheckFailed
from runbook.host import sockets as host_sockets
from runbook.host.target import Target
from selftests.data_servers import free_port  # a port of this worker's own block

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "4.", "remedy": "fix it"}


def target() -> Target:
    return Target("local", "local://", command_timeout=20, connect_timeout=5)


def check(**fields: Any) -> SocketCheck:
    return SocketCheck(**{**COMMON, "id": "redis-exposure", **fields})


def verdict(found: SocketCheck) -> CheckFailed | None:
    try:
        sockets.verify(found, target())
    except CheckFailed as failed:
        return failed
    return None


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[int]:
    """A TCP listener on the address the test names (parametrized indirectly), its port."""
    family = socket.AF_INET6 if ":" in request.param else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        server.bind((request.param, 0))
    except OSError as exc:
        server.close()
        pytest.skip(f"cannot bind {request.param}: {exc}")
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


# The runner's "outside" address, in a network namespace of the test's own: a lab-range address
# on its loopback device, so no connection ever leaves this machine's loopback.
OUTSIDE = "198.18.254.1"
IN_OWN_NAMESPACE = """
import socket, sys
from runbook.checks import sockets
from runbook.errors import CheckFailed
from runbook.host.target import Target
bind, wanted = sys.argv[1], sys.argv[2:]
server = socket.socket()
server.bind((bind, 0))
server.listen()
port = server.getsockname()[1]
fields = {"only_on": wanted} if wanted else {"not_listening": True}
check = sockets.SocketCheck(id="s", title="port exposure", severity="P2", section="1.", remedy="fix",
                            port=port, from_runner=True, runner_address="OUTSIDE", **fields)
try:
    sockets.verify(check, Target("local", "local://", command_timeout=10, connect_timeout=5))
    print("PASSED")
except CheckFailed as exc:
    print("FAILED", exc.found.replace(str(port), "PORT"))
""".replace("OUTSIDE", OUTSIDE)


def in_own_namespace(bind: str, *only_on: str) -> str:
    """The check's verdict, run in a fresh network namespace where OUTSIDE is this host's address."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a network namespace of its own")
    script = f"ip link set lo up && ip addr add {OUTSIDE}/32 dev lo && "
    script += 'p="$0" c="$1" && shift && exec "$p" -c "$c" "$@"'
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, sys.executable, IN_OWN_NAMESPACE, bind, *only_on],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.parametrize("listener", ["127.0.0.1"], indirect=True)
def test_loopback_only_is_green(listener: int) -> None:
    assert verdict(check(port=listener, listens=True)) is None
    assert verdict(check(port=listener, listens=True, address="127.0.0.1")) is None
    assert verdict(check(port=listener, only_on=["127.0.0.1", "::1"])) is None


@pytest.mark.parametrize("listener", ["0.0.0.0"], indirect=True)
def test_every_address_is_red_for_only_on(listener: int) -> None:
    failed = verdict(check(port=listener, only_on=["127.0.0.1", "::1"]))
    assert failed is not None
    assert failed.found == (
        f"tcp port {listener} listens on 0.0.0.0:{listener} (every IPv4 address), not only on 127.0.0.1, ::1"
    )
    assert f"0.0.0.0:{listener}" in failed.evidence[f"listening on port {listener} (ss)"]
    # Listening on every IPv4 address covers 127.0.0.1 too.
    assert verdict(check(port=listener, listens=True, address="127.0.0.1")) is None


@pytest.mark.parametrize("listener", ["::1"], indirect=True)
def test_an_ipv6_loopback_listener(listener: int) -> None:
    assert verdict(check(port=listener, only_on=["127.0.0.1", "::1"])) is None
    failed = verdict(check(port=listener, listens=True, address="127.0.0.1"))
    assert failed is not None
    assert failed.found == f"tcp port {listener} listens on [::1]:{listener}, not on 127.0.0.1"


def test_nothing_listening() -> None:
    port = free_port()
    failed = verdict(check(port=port, listens=True))
    assert failed is not None and failed.found == f"nothing listens on tcp port {port} on local://"
    assert verdict(check(port=port, not_listening=True)) is None
    assert verdict(check(port=port, only_on=["127.0.0.1"])) is None  # not exposed either


@pytest.mark.parametrize("listener", ["127.0.0.1"], indirect=True)
def test_not_listening_is_red_when_it_listens(listener: int) -> None:
    failed = verdict(check(port=listener, not_listening=True))
    assert failed is not None and failed.found == f"tcp port {listener} listens on 127.0.0.1:{listener}"


def test_udp() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", 0))
    port = server.getsockname()[1]
    try:
        assert verdict(check(port=port, protocol="udp", listens=True)) is None
        failed = verdict(check(port=port, protocol="udp", only_on=["127.0.0.1"]))
        assert failed is not None and failed.found.startswith(f"udp port {port} listens on 0.0.0.0:{port}")
    finally:
        server.close()


def test_from_runner_reaches_an_exposed_port() -> None:
    assert in_own_namespace("0.0.0.0").startswith("FAILED")  # ss already says so
    # ss allows it (0.0.0.0 is listed), the connection from the runner is the proof that fails.
    assert in_own_namespace("0.0.0.0", "0.0.0.0") == (
        f"FAILED tcp port PORT accepts TCP connections from the runner at {OUTSIDE}:PORT"
    )


def test_from_runner_does_not_reach_a_loopback_port() -> None:
    assert in_own_namespace("127.0.0.1", "127.0.0.1") == "PASSED"


def test_from_runner_needs_an_outside_address() -> None:
    with pytest.raises(CheckError, match="no network address"):
        sockets.verify(check(port=free_port(), not_listening=True, from_runner=True), target())
    with pytest.raises(CheckError, match="loopback"):
        sockets.verify(
            check(port=free_port(), not_listening=True, from_runner=True, runner_address="127.0.0.1"),
            target(),
        )


def test_ss_lines_are_parsed() -> None:
    text = (
        "LISTEN 0 4096 127.0.0.1:8000 0.0.0.0:*\n"
        "LISTEN 0 511 [::]:80 [::]:*\n"
        "LISTEN 0 511 *:443 *:*\n"
        "UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*\n"
        "LISTEN 0 128 [::ffff:127.0.0.1]:6379 [::]:*\n"
    )
    found = host_sockets.parse(text, "tcp")
    assert [(listener.address, listener.port) for listener in found] == [
        ("127.0.0.1", 8000),
        ("::", 80),
        ("*", 443),
        ("127.0.0.53", 53),
        ("127.0.0.1", 6379),
    ]
    assert found[3].interface == "lo"
    assert found[1].accepts_on("10.0.0.5") and not found[0].accepts_on("10.0.0.5")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"port": 80}, "set exactly one of"),
        ({"port": 80, "listens": True, "only_on": ["127.0.0.1"]}, "set exactly one of"),
        ({"port": 80, "only_on": ["localhost"]}, "not an IP address"),
        ({"port": 80, "only_on": ["127.0.0.1"], "address": "127.0.0.1"}, "address goes with listens"),
        ({"port": 80, "listens": True, "from_runner": True}, "use it with only_on or not_listening"),
        ({"port": 53, "protocol": "udp", "not_listening": True, "from_runner": True}, "protocol tcp only"),
    ],
)
def test_description_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SocketCheck(**{**COMMON, "id": "x", **fields})
