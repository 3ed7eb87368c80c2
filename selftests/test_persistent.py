"""ssh+persist://: one open shell per host, proven against a loopback sshd (no lab needed).

Framing, exit codes, binary output, caps, stdin, isolation between commands, deadlines,
a shell that dies, sudo, an unreachable host, streaming, closing, testinfra's modules on
top, and a whole pytest run. Speed is measured by bench/bench_commands.py, not here.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_foundation import run_pytest

from runbook.errors import CheckError, CommandTimeout, HostUnreachable
from runbook.host.processes import OUTPUT_CAP
from runbook.host.target import Target, TargetPool
from runbook.host.transports import Transport, TransportError, TransportTimeout, open_transport
from runbook.host.transports.base import CommandLost
from selftests.sshd import LoopbackSshd, loopback_sshd


@pytest.fixture
def transport(sshd: LoopbackSshd) -> Iterator[Transport]:
    opened = open_transport(sshd.spec("ssh+persist"), connect_timeout=5)
    yield opened
    opened.close()


@pytest.fixture
def target(sshd: LoopbackSshd) -> Iterator[Target]:
    box = Target("box", sshd.spec("ssh+persist"), command_timeout=10, connect_timeout=5)
    yield box
    box.connection.close()


def shell_pid(transport: Transport) -> int:
    """The session shell's pid: `$$` in a command's subshell is the shell's own."""
    return int(transport.run('printf %s "$$"', timeout=5).stdout)


def gone(pid: int, within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False).returncode == 0


# -- framing -------------------------------------------------------------------------------


def test_stdout_stderr_and_exit_code_come_back_apart(transport: Transport) -> None:
    raw = transport.run("printf 'out\\n'; printf 'err' >&2; printf 'more out'; exit 3", timeout=5)
    assert (raw.rc, raw.stdout, raw.stderr, raw.dropped) == (3, b"out\nmore out", b"err", 0)


def test_every_byte_comes_back_exactly(transport: Transport, tmp_path: Path) -> None:
    # Every byte value, braces like the frame markers' and no newline at the end.
    payload = bytes(range(256)) * 64 + b"0123456789abcdef{}" * 3
    (tmp_path / "blob").write_bytes(payload)
    raw = transport.run(f"cat {tmp_path}/blob; cat {tmp_path}/blob >&2", timeout=5)
    assert (raw.rc, raw.stdout, raw.stderr) == (0, payload, payload)


def test_exit_codes_pass_through_the_target(target: Target) -> None:
    for code in (0, 1, 124, 255):
        assert target.run(f"exit {code}").rc == code
    assert target.unreachable is None


def test_big_output_is_capped_and_the_next_command_is_framed(transport: Transport) -> None:
    raw = transport.run("head -c 12000000 /dev/zero; echo tail", timeout=30)
    assert raw.rc == 0
    assert raw.dropped == 12000005 - OUTPUT_CAP
    assert raw.stdout.endswith(b"\0tail\n") and b"bytes of output not kept" in raw.stdout
    assert transport.run("echo next", timeout=5).stdout == b"next\n"


@pytest.mark.slow
def test_testinfra_gets_every_byte_while_the_target_keeps_its_cap(target: Target) -> None:
    """The cap is the suite's evidence's, never a testinfra result's (host.run, host.file().content)."""
    whole = target.host.run("head -c 12000000 /dev/zero; echo tail >&2")
    assert (whole.rc, len(whole.stdout_bytes), whole.stderr_bytes) == (0, 12000000, b"tail\n")
    capped = target.run("head -c 12000000 /dev/zero")
    assert capped.dropped == 12000000 - OUTPUT_CAP


def test_stdin_is_closed(transport: Transport) -> None:
    raw = transport.run("cat; read line; echo read=$?", timeout=10)
    assert raw.stdout == b"read=1\n"
    # A cat that waited for input would have timed out (TransportTimeout): the answer is the proof.


# -- isolation -----------------------------------------------------------------------------


def test_nothing_leaks_into_the_next_command(transport: Transport) -> None:
    home = transport.run("pwd; umask", timeout=5).stdout
    transport.run(
        "cd /tmp; export LEAK=1; umask 077; SHELL_VAR=2; trap 'echo trapped' EXIT; exit 4", timeout=5
    )
    after = transport.run('pwd; umask; echo "${LEAK-unset} ${SHELL_VAR-unset}"', timeout=5)
    assert after.stdout == home + b"unset unset\n"


def test_each_command_sees_a_fresh_logins_environment(sshd: LoopbackSshd, target: Target) -> None:
    """The same variables and values as a new SSH session (paramiko://) gives a command."""
    fresh = Target("fresh", sshd.spec("paramiko"), command_timeout=10, connect_timeout=5)
    per_connection = ("SSH_CLIENT=", "SSH_CONNECTION=", "_=")  # source port; the last program run

    def environment(box: Target) -> list[str]:
        lines = box.run("env | sort").stdout.splitlines()
        return [line for line in lines if not line.startswith(per_connection)]

    try:
        assert environment(target) == environment(fresh)
        assert environment(target) == environment(target)
    finally:
        fresh.connection.close()


# -- deadlines and a shell that dies ---------------------------------------------------------


@pytest.mark.slow
def test_a_command_past_the_transports_deadline_is_killed_and_a_new_shell_serves(
    transport: Transport,
) -> None:
    first = shell_pid(transport)
    started = time.monotonic()
    with pytest.raises(TransportTimeout, match="killed"):
        transport.run("sleep 37.25 & sleep 37.25; echo late", timeout=1)
    assert time.monotonic() - started < 20  # cut long before the 37 s sleeps end
    assert gone(first)
    deadline = time.monotonic() + 5
    while running("sleep 37.25") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running("sleep 37.25"), "the command and its background child were killed"
    assert transport.run("echo next", timeout=5).stdout == b"next\n"
    assert shell_pid(transport) != first


@pytest.mark.slow
def test_endless_output_ends_at_the_deadline(transport: Transport) -> None:
    started = time.monotonic()
    with pytest.raises(TransportTimeout):
        transport.run("yes runbook-endless", timeout=2)
    assert time.monotonic() - started < 20  # `yes` never ends: the deadline did
    assert transport.run("echo next", timeout=5).stdout == b"next\n"


@pytest.mark.slow
def test_a_command_past_the_targets_deadline_leaves_the_shell_usable(target: Target) -> None:
    shell = shell_pid(target.connection.transport)
    with pytest.raises(CommandTimeout, match="did not finish within 1s"):
        target.run("sleep 38.5", timeout=1)
    assert shell_pid(target.connection.transport) == shell
    assert not running("sleep 38.5")


def test_what_a_command_leaves_running_is_killed_when_it_exits(target: Target) -> None:
    """The Target sends a bare `exec timeout ...` here: the session kills its group afterwards."""
    result = target.run("sleep 39.75 & echo started")
    assert (result.rc, result.stdout) == (0, "started\n")
    assert "left processes running in the background; they were killed" in result.stderr
    deadline = time.monotonic() + 5
    while running("sleep 39.75") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running("sleep 39.75")
    clean = target.run("echo quiet >&2; exit 4")
    assert (clean.rc, clean.stderr) == (4, "quiet\n")


def test_a_shell_killed_between_commands_is_replaced_transparently(transport: Transport) -> None:
    first = shell_pid(transport)
    os.kill(first, signal.SIGKILL)
    assert gone(first)
    assert transport.run("echo still here", timeout=5).stdout == b"still here\n"
    assert shell_pid(transport) != first


def test_a_shell_killed_during_a_command_loses_that_command_only(transport: Transport) -> None:
    first = shell_pid(transport)
    with pytest.raises(CommandLost, match="ended while it ran the command"):
        transport.run('kill -KILL "$$"; sleep 0.2', timeout=10)
    assert transport.run("echo next", timeout=5).stdout == b"next\n"
    assert shell_pid(transport) != first


def test_a_lost_command_fails_its_check_and_the_host_stays_reachable(target: Target) -> None:
    """One shell that dies must not skip every later check of the host as unreachable."""
    with pytest.raises(CheckError, match="has no result: the session's shell ended while it ran"):
        target.run(f"kill -KILL {shell_pid(target.connection.transport)}; sleep 0.2")
    assert target.connection.unreachable is None
    assert target.run("echo next").stdout == "next\n"


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["paramiko", "ssh+persist"])
def test_stdin_is_dev_null_on_every_channel(sshd: LoopbackSshd, scheme: str) -> None:
    """Commands and streams read /dev/null: no EOF is sent on a channel the server may have freed.

    A `cat` that waited for input would time out (TransportTimeout): the outcome proves it, with
    no wall-time bound that a busy runner could break.
    """
    opened = open_transport(sshd.spec(scheme), connect_timeout=5)
    try:
        assert opened.run("cat; echo done", timeout=10).stdout == b"done\n"
        for _ in range(50):  # commands that end at once: the race that dropped the connection
            assert opened.run("true", timeout=10).rc == 0
        with opened.stream("cat; echo streamed", timeout=10) as (stream, _end):
            assert stream.read() == b"streamed\n"
    finally:
        opened.close()


@pytest.mark.slow
def test_commands_from_several_threads_run_at_once(transport: Transport) -> None:
    said: dict[int, bytes] = {}

    def work(number: int) -> None:
        said[number] = transport.run(f"date +%s.%N; sleep 2; echo {number}; date +%s.%N", timeout=30).stdout

    workers = [threading.Thread(target=work, args=(number,)) for number in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert {number: text.split()[1] for number, text in said.items()} == {
        n: str(n).encode() for n in range(4)
    }
    # At once: every command started before any ended (the host's own clock, not the runner's wall
    # time, so a busy runner cannot fail this; one after another they could not overlap).
    spans = [tuple(float(word) for word in text.split()[::2]) for text in said.values()]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def established(port: int) -> int:
    """This machine's TCP connections to a local port (the client ends)."""
    said = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{port} )"], capture_output=True, check=True
    )
    return len(said.stdout.splitlines())


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["ssh+persist", "paramiko"])
def test_a_refused_channel_is_waited_for_on_the_same_connection(tmp_path: Path, scheme: str) -> None:
    """sshd's MaxSessions refuses a channel; that is no dead connection: commands wait for room,
    one connection serves them all, and close() leaves none established."""
    with loopback_sshd(tmp_path, extra_config="MaxSessions 2\n") as server:
        opened = open_transport(server.spec(scheme), connect_timeout=5)
        host = opened.testinfra_host()  # type: ignore[attr-defined]
        said: dict[int, str] = {}

        def work(number: int) -> None:
            if number % 2:  # the suite's own path (Target) and testinfra's alike
                said[number] = opened.run(f"sleep 0.3; echo {number}", timeout=30).stdout.decode()
            else:
                said[number] = host.run("sleep 0.3; echo %s", str(number)).stdout

        workers = [threading.Thread(target=work, args=(number,)) for number in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert said == {number: f"{number}\n" for number in range(6)}
        assert established(server.port) == 1
        opened.close()
        deadline = time.monotonic() + 5
        while established(server.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert established(server.port) == 0


@pytest.mark.slow
def test_testinfras_command_deadline_is_the_specs_command_timeout(sshd: LoopbackSshd) -> None:
    """testinfra's commands have ?command_timeout= (or get_host's keyword), not a fixed 60 s."""
    import testinfra

    opened = open_transport(sshd.spec("ssh+persist", "command_timeout=1"), connect_timeout=5)
    try:
        host = opened.testinfra_host()  # type: ignore[attr-defined]
        with pytest.raises(TransportTimeout, match="within 1s"):
            host.run("sleep 30")
    finally:
        opened.close()
    built = testinfra.get_host(sshd.spec("ssh+persist"), command_timeout="1")
    try:
        with pytest.raises(TransportTimeout, match="within 1s"):
            built.run("sleep 30")
    finally:
        built.backend.transport.close()
    unclear = open_transport(sshd.spec("ssh+persist", "command_timeout=soon"), connect_timeout=5)
    with pytest.raises(TransportError, match="command_timeout='soon'"):
        unclear.testinfra_host().run("true")  # type: ignore[attr-defined]


# -- sudo, unreachable, host keys ------------------------------------------------------------


@pytest.mark.slow
def test_sudo_runs_commands_as_the_user_asked(sshd: LoopbackSshd) -> None:
    for options, expected in (("sudo=true", "root"), ("sudo=true&sudo_user=nobody", "nobody")):
        box = Target("box", sshd.spec("ssh+persist", options), command_timeout=10, connect_timeout=5)
        try:
            result = box.run("id -un; cd /tmp")
            assert (result.rc, result.stdout) == (0, f"{expected}\n"), result.stderr
            assert box.host.check_output("id -un") == expected
            # Under sudo the Target keeps its own wrapper: a left-behind child still dies.
            orphan = box.run("sleep 41.5 & exit 3")
            assert orphan.rc == 3 and "they were killed" in orphan.stderr
            assert not running("sleep 41.5")
        finally:
            box.connection.close()


def test_a_closed_port_is_host_unreachable(sshd: LoopbackSshd) -> None:
    spec = f"ssh+persist://root@127.0.0.1:1?ssh_identity_file={sshd.folder / 'client_key'}"
    box = Target("box", spec, command_timeout=5, connect_timeout=2)
    with pytest.raises(HostUnreachable, match=r"host box \(ssh\+persist://root@127\.0\.0\.1:1\) unreachable"):
        box.run("true")
    with pytest.raises(HostUnreachable, match="reported once"):
        box.run("true")


def test_an_unknown_host_key_is_refused_unless_checking_is_off(sshd: LoopbackSshd) -> None:
    spec = f"ssh+persist://root@127.0.0.1:{sshd.port}?ssh_identity_file={sshd.folder / 'client_key'}"
    strict = Target("box", spec, command_timeout=5, connect_timeout=5)
    with pytest.raises(HostUnreachable, match="not found in known_hosts"):
        strict.run("true")
    trusting = Target("box", spec + "&host_key_check=off", command_timeout=5, connect_timeout=5)
    try:
        assert trusting.run("echo ok").stdout == "ok\n"
        assert trusting.display.endswith("(host key NOT verified)")
    finally:
        trusting.connection.close()


# -- streaming and closing -------------------------------------------------------------------


@pytest.mark.slow
def test_a_50_mb_file_streams_on_the_same_connection(target: Target, tmp_path: Path) -> None:
    big = tmp_path / "big"
    with big.open("wb") as sink:
        for block in range(50):
            sink.write(hashlib.sha512(str(block).encode()).digest() * 16384)  # 1 MiB each
    digest = hashlib.sha256()
    with target.open_stream(str(big), timeout=30) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()
    assert target.run("echo after").stdout == "after\n"


def test_a_port_forward_shares_the_connection(transport: Transport) -> None:
    """paramiko://'s direct-tcpip forwards come with the connection (a database behind SSH)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        tunnel = transport.tunnel("127.0.0.1", port)
        with socket.create_connection(tunnel.local, timeout=5) as client:
            server, _ = listener.accept()
            with server:
                client.sendall(b"ping")
                assert server.recv(4) == b"ping"


def test_the_end_of_the_run_closes_the_shells(sshd: LoopbackSshd) -> None:
    pool = TargetPool()
    box = pool.get("box", sshd.spec("ssh+persist"), command_timeout=10, connect_timeout=5)
    shell = shell_pid(box.connection.transport)
    pool.close()
    assert gone(shell)


# -- testinfra's modules on top --------------------------------------------------------------


@pytest.mark.slow
def test_testinfra_modules_run_through_the_same_connection(target: Target) -> None:
    """One connection, but each command a process of its own, as under ssh:// (`$$` differs)."""
    connection = target.run('echo "$SSH_CONNECTION"').stdout
    host = target.host
    assert host.backend.NAME == "ssh+persist"
    passwd = host.file("/etc/passwd")
    assert passwd.exists and passwd.is_file and passwd.user == "root" and passwd.contains("^root:")
    assert host.user("root").uid == 0
    assert host.process.filter(comm="sshd")
    assert host.check_output("echo %s", "quoted arg") == "quoted arg"
    assert host.run("exit 3").rc == 3
    assert host.check_output('echo "$SSH_CONNECTION"') + "\n" == connection  # no second connection
    assert host.check_output('printf %s "$$"') != host.check_output('printf %s "$$"')


@pytest.mark.slow
def test_testinfra_get_host_knows_the_scheme(sshd: LoopbackSshd) -> None:
    import testinfra

    host = testinfra.get_host(sshd.spec("ssh+persist"))
    try:
        assert host.backend.NAME == "ssh+persist"
        assert host.file("/etc").is_directory
    finally:
        host.backend.transport.close()


# -- a whole run -----------------------------------------------------------------------------

DESCRIPTION = """\
system: persistent
runbook: runbook.md
hosts:
  server: "{spec}"
checks:
  commands:
    - id: over-ssh
      title: the command ran over SSH to loopback
      run: 'echo "$SSH_CONNECTION" | cut -d" " -f3'
      expect_stdout: 127.0.0.1
      severity: P2
      section: "1."
      remedy: fix
  files:
    - {{id: etc, title: etc exists, path: /etc, type: directory, severity: P3, section: "2.", remedy: fix}}
"""


@pytest.mark.slow
def test_a_whole_run_over_ssh_persist(sshd: LoopbackSshd, tmp_path: Path) -> None:
    description = tmp_path / "persistent.yml"
    description.write_text(DESCRIPTION.format(spec=sshd.spec("ssh+persist")), encoding="utf-8")
    done = run_pytest(f"--systems={description}", f"--reports-dir={tmp_path / 'reports'}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 3 passed" in done.stdout, done.stdout
