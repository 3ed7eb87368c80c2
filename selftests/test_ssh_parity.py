"""ssh+persist:// and paramiko:// answer through testinfra's API exactly as stock ssh:// does.

The same queries (raw_queries and module_queries below, 403 of them, counted by
test_there_are_enough_queries) run in order through testinfra's own `ssh://` backend and
through the suite's backends (`Connection.testinfra_host`, what custom checks get) on one
loopback sshd; rc, stdout bytes and stderr bytes (or the exception) must be equal. The
sshd gives sessions a HOME of the test's, whose .bashrc is not idempotent (it prepends to
PATH and counts itself): a command must see it read exactly once, as under ssh://.

Each backend opens its connection once and answers every query in one pass, the three
backends side by side; one test per suite backend compares and lists every difference.
The deliberate differences are DELIBERATE below, each said in README.md ("ssh+persist://
and ssh://"). Stock ssh:// runs with a ControlMaster (testinfra's `controlpath`): each command is still
a session of its own on the server, only the client's key exchange is shared.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbook.host.target import Connection
from selftests.sshd import LoopbackSshd, loopback_sshd

# What the test's login rc file does: not idempotent, so reading it twice would show.
BASHRC = 'export PATH="/parity-bin:$PATH"; export PARITY_RC=$((PARITY_RC+1)); parity_fn() { echo fn; }\n'
SUITE_SCHEMES = ("ssh+persist", "paramiko")


# -- the queries --------------------------------------------------------------------------------


def raw_queries(data: Path) -> list[tuple[str, str]]:
    """(id, command) pairs, run in this order: background children and leaks show in the next one."""
    big, binary, uni = data / "ten-mib", data / "binary", data / "unicode-ü"
    queries: list[tuple[str, str]] = []
    add = queries.append
    # exit codes 0..255 (every third, and the edges)
    for code in sorted({*range(0, 256, 3), 1, 2, 125, 126, 127, 128, 129, 130, 143, 254, 255}):
        add((f"exit-{code}", f"echo before; echo err >&2; exit {code}"))
    # sizes up to 20 MB, on stdout and stderr
    for size in (0, 1, 4095, 4096, 65535, 65536, 65537, 1 << 20, (4 << 20) - 1, 4 << 20, (4 << 20) + 1):
        add((f"stdout-{size}", f"yes | head -c {size}"))
    for size in (1 << 16, 5_000_000):
        add((f"stderr-{size}", f"yes | head -c {size} >&2"))
    add(("yes-10m", "yes | head -c 10000000"))
    add(("zero-20m", "head -c 20000000 /dev/zero"))
    add(("cat-10mib", f"cat {big}"))
    add(("cat-10mib-err", f"cat {big} >&2; echo done"))
    add(("interleaved", "for i in $(seq 2000); do echo out$i; echo err$i >&2; done"))
    # binary, unicode, invalid UTF-8, frame-like bytes
    add(("binary-file", f"cat {binary}"))
    add(("binary-stderr", f"cat {binary} >&2"))
    add(("every-byte", "printf \"$(printf '\\\\%03o' $(seq 0 255) | tr -d ' ')\""))
    add(("nul-bytes", "printf 'a\\0b\\0'"))
    add(("no-newline", "printf 'no newline at the end'"))
    add(("crlf", "printf 'a\\r\\nb\\r\\n'"))
    add(("braces", "printf '%s' '}{ {} }}{{'"))
    add(("unicode-echo", "echo 'héllo ✓ 日本語 🚀'"))
    add(("unicode-wc", "printf '日本語' | wc -c"))
    add(("invalid-utf8", "printf '\\xff\\xfe\\x80 ok\\n'"))
    add(("invalid-utf8-err", "printf '\\xc3\\x28\\n' >&2"))
    add(("unicode-path", f"cat {uni}; ls {data} | sort"))
    # stdin readers: stdin is at its end at once
    for i, reader in enumerate(
        (
            "cat",
            "read x; echo rc=$? x=$x",
            "head -c 1; echo $?",
            "wc -c",
            "sed p",
            "cat -; echo done",
            "[ -t 0 ]; echo tty=$?",
            "test -p /dev/stdin; echo pipe=$?",
            "timeout 5 dd bs=1 count=1 2>/dev/null | wc -c",
        )
    ):
        add((f"stdin-{i}", reader))
    # signals, dispositions
    for sig in ("INT", "TERM", "KILL", "HUP", "QUIT", "USR1", "PIPE"):
        add((f"kill-self-{sig}", f"echo before; kill -{sig} $$; echo after"))
        add((f"kill-child-{sig}", f"sh -c 'kill -{sig} $$; echo survived'; echo rc=$?"))
    add(("sig-masks", "grep -E '^Sig(Ign|Blk)' /proc/self/status"))
    add(("sig-masks-shell", "grep -E '^Sig(Ign|Blk)' /proc/$$/status"))
    add(("trap-int", "trap 'echo caught' INT; kill -INT $$; echo after"))
    add(("sigpipe", "yes | head -c 3; echo; echo ${PIPESTATUS[*]}"))
    # background children and their late output
    add(("bg-late", "(sleep 0.5; echo LATE; echo LATE-ERR >&2) & echo started"))
    add(("after-bg-late", "sleep 1; echo next"))
    add(("bg-echo", "echo bg & wait"))
    add(("bg-race", "echo bg &"))
    add(("after-bg-race", "echo next"))
    add(("bg-detached", "sleep 5 >/dev/null 2>&1 & echo detached"))
    add(("bg-stderr-only", "(exec >&-; sleep 0.5; echo late-err >&2) & echo out"))
    add(("bg-exit-code", "(sleep 0.5; echo late) & exit 3"))
    add(("after-bg-exit", "echo next"))
    # leaks between commands: nothing carries over
    add(
        (
            "leak-set",
            "cd /tmp; export LEAK=1; umask 077; X=2; trap 'echo trapped' EXIT; set -o pipefail; "
            "alias ll=ls; ulimit -n 64; exit 4",
        )
    )
    add(
        (
            "leak-check",
            "pwd; umask; echo ${LEAK-unset} ${X-unset}; trap; set -o | grep pipefail; alias; ulimit -n",
        )
    )
    add(("pid-own", "test $$ != $PPID && echo own"))
    add(("pid-kill-9", "kill -9 $$"))
    add(("after-kill-9", "echo alive"))
    # exit, exec, closed fds
    for i, line in enumerate(
        (
            "exit",
            "exit 0",
            "exec true",
            "exec false",
            "exec echo hi",
            "exec sh -c 'echo $0'",
            "exec 1>&-; echo gone; echo err >&2",
            "exec 2>&-; echo out; echo err >&2",
            "exec 0<&-; cat; echo rc=$?",
            "exec >/dev/null; echo hidden; echo shown >&2",
            "exec 1>&- 2>&-; sleep 0.2",
            "echo x; exit 1; echo never",
            "return 2",
            "exec 3>&1; echo three >&3",
            "ls /proc/self/fd; ls -l /proc/self/fd/0 | cut -c1-10",
        )
    ):
        add((f"exit-exec-{i}", line))
    # long command lines
    add(("line-100k", "echo " + "a" * 100_000 + " | wc -c"))
    add(("line-200k", "X=" + "b" * 200_000 + "; echo ${#X}"))
    add(("line-many-args", "printf '%s\\n' " + " ".join(f"w{i}" for i in range(20_000)) + " | tail -1"))
    # bash-only syntax and the login shell's ways
    for i, line in enumerate(
        (
            "[[ 1 == 1 ]] && echo yes",
            "echo {1..3}",
            f"echo hi &>{data}/scratch/amp-$$; cat {data}/scratch/amp-$$; rm {data}/scratch/amp-$$",
            "set -o pipefail; false | true; echo $?",
            "echo 'a\\nb'",
            "echo -e 'a\\tb'",
            "arr=(1 2 3); echo ${arr[1]}",
            "echo $((2**10))",
            "cat <<< here",
            "echo $'\\x41'",
            "function f { echo f; }; f",
            "type echo",
            "echo $-",
            "echo $0",
            "echo ${BASH_VERSION%%.*}",
            "shopt -q extglob; echo $?",
            "declare -p BASH_ARGV0 2>&1 | cut -c1-10",
            "echo ${#BASH_SOURCE[@]}",
            "ps -o args= -p $$",  # shell-18: holds the pid, see VOLATILE
            "echo (",
            "if",
            "echo 'open",
            "fi",
            "nonexistent-command-x",
            "ls /nonexistent-x",
            "cd /nonexistent-x",
            "echo $RANDOM >/dev/null; echo ok",
            "type parity_fn",
            "parity_fn",
        )
    ):
        add((f"shell-{i}", line))
    # the environment a command starts with
    add(("env", "env | grep -v -e ^SSH_CLIENT= -e ^SSH_CONNECTION= | sort"))
    add(("rc-once", "echo $PARITY_RC $PATH"))
    for i, line in enumerate(
        (
            "id",
            "umask",
            "pwd",
            "echo $HOME",
            "ulimit -n",
            "tty; echo $?",
            "echo ${TERM-unset}",
            "echo $SHLVL",
            "echo $_",
            "locale 2>&1 | head -3",
            'test -n "$SSH_CONNECTION" && echo ssh',
            "cat /proc/self/loginuid",
            "nice",
            "getconf ARG_MAX",
            "hostname",
        )
    ):
        add((f"env-{i}", line))
    return queries


@dataclass(frozen=True)
class ModuleQuery:
    id: str
    ask: Callable[[Any], Any]


def _file(path: str, attribute: str) -> Callable[[Any], Any]:
    return lambda host: getattr(host.file(path), attribute)


def module_queries(data: Path, sshd_port: int) -> list[ModuleQuery]:
    """testinfra's modules: the values they return (or what they raise) must be equal."""
    queries: list[ModuleQuery] = []
    paths = [
        "/etc/passwd",
        "/etc",
        "/nonexistent-x",
        str(data / "ten-mib"),
        str(data / "binary"),
        str(data / "unicode-ü"),
        str(data / "link"),
        "/proc/self",
        "/dev/null",
    ]
    for path in paths:
        for attribute in ("exists", "is_file", "is_directory", "is_symlink", "is_pipe", "is_socket"):
            queries.append(ModuleQuery(f"file-{path}-{attribute}", _file(path, attribute)))
    for path in ("/etc/passwd", str(data / "binary"), str(data / "unicode-ü"), str(data / "link")):
        for attribute in ("user", "uid", "group", "gid", "mode", "size", "md5sum", "sha256sum", "linked_to"):
            queries.append(ModuleQuery(f"file-{path}-{attribute}", _file(path, attribute)))
    queries += [
        ModuleQuery("file-content-10mib", _file(str(data / "ten-mib"), "content")),
        ModuleQuery("file-content-binary", _file(str(data / "binary"), "content")),
        ModuleQuery("file-content-string", _file("/etc/hostname", "content_string")),
        ModuleQuery("file-content-missing", _file("/nonexistent-x", "content")),
        ModuleQuery("file-listdir", lambda host: sorted(host.file(str(data)).listdir())),
        ModuleQuery("file-contains", lambda host: host.file("/etc/passwd").contains("^root:")),
        ModuleQuery("file-mtime", lambda host: host.file(str(data / "binary")).mtime),
        ModuleQuery("package-openssh", lambda host: host.package("openssh-server").is_installed),
        ModuleQuery("package-openssh-version", lambda host: host.package("openssh-server").version),
        ModuleQuery("package-missing", lambda host: host.package("nonexistent-pkg-x").is_installed),
        ModuleQuery("package-missing-version", lambda host: host.package("nonexistent-pkg-x").version),
        ModuleQuery("package-bash", lambda host: host.package("bash").is_installed),
    ]
    for name in ("ssh", "cron", "nonexistent-svc-x"):
        for attribute in ("is_running", "is_enabled", "is_valid", "is_masked"):
            queries.append(
                ModuleQuery(
                    f"service-{name}-{attribute}",
                    lambda host, n=name, a=attribute: getattr(host.service(n), a),
                )
            )
    for name in ("root", "nobody", "nonexistent-user-x"):
        for attribute in ("exists", "uid", "gid", "group", "groups", "home", "shell", "password", "gecos"):
            queries.append(
                ModuleQuery(
                    f"user-{name}-{attribute}", lambda host, n=name, a=attribute: getattr(host.user(n), a)
                )
            )
    for name in ("root", "nogroup", "nonexistent-group-x"):
        for attribute in ("exists", "gid", "members"):
            queries.append(
                ModuleQuery(
                    f"group-{name}-{attribute}", lambda host, n=name, a=attribute: getattr(host.group(n), a)
                )
            )
    for spec in (
        f"tcp://127.0.0.1:{sshd_port}",
        "tcp://127.0.0.1:1",
        "udp://0.0.0.0:1",
        f"tcp://{sshd_port}",
    ):
        queries.append(ModuleQuery(f"socket-{spec}", lambda host, s=spec: host.socket(s).is_listening))
    queries += [
        ModuleQuery("process-1", lambda host: (host.process.get(pid=1).comm, host.process.get(pid=1).user)),
        ModuleQuery(
            "process-kthreadd", lambda host: [(p.pid, p.comm) for p in host.process.filter(comm="kthreadd")]
        ),
        ModuleQuery("process-missing", lambda host: host.process.filter(comm="nonexistent-proc-x")),
        ModuleQuery("sysctl-ostype", lambda host: host.sysctl("kernel.ostype")),
        ModuleQuery("sysctl-forward", lambda host: host.sysctl("net.ipv4.ip_forward")),
        ModuleQuery("sysctl-missing", lambda host: host.sysctl("nonexistent.key")),
        ModuleQuery(
            "mount-root", lambda host: (host.mount_point("/").exists, host.mount_point("/").filesystem)
        ),
        ModuleQuery(
            "mount-proc", lambda host: (host.mount_point("/proc").exists, host.mount_point("/proc").device)
        ),
        ModuleQuery("mount-missing", lambda host: host.mount_point("/nonexistent-x").exists),
        ModuleQuery(
            "interface-lo", lambda host: (host.interface("lo").exists, host.interface("lo").addresses)
        ),
        ModuleQuery("interface-missing", lambda host: host.interface("nonexistent0").exists),
        ModuleQuery(
            "system-info",
            lambda host: (
                host.system_info.type,
                host.system_info.distribution,
                host.system_info.release,
                host.system_info.codename,
                host.system_info.arch,
            ),
        ),
        ModuleQuery("check-output", lambda host: host.check_output("echo %s", "quoted arg; $HOME")),
        ModuleQuery("check-output-fails", lambda host: host.check_output("false")),
        ModuleQuery("run-expect", lambda host: host.run_expect([0, 1], "exit 1").rc),
        ModuleQuery("run-test", lambda host: host.run_test("test -e /etc").rc),
        ModuleQuery("exists-bash", lambda host: host.exists("bash")),
        ModuleQuery("exists-missing", lambda host: host.exists("nonexistent-command-x")),
        ModuleQuery("find-command", lambda host: host.find_command("sh")),
        ModuleQuery(
            "environment",
            lambda host: sorted(
                (k, v) for k, v in host.environment().items() if k not in ("SSH_CLIENT", "SSH_CONNECTION")
            ),
        ),
    ]
    return queries


# -- running them -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one backend gave for one query: (rc, stdout, stderr), a module's value, or what it raised."""

    rc: Any
    stdout: Any
    stderr: Any
    raised: str = ""


def _exception(exc: BaseException) -> Answer:
    first = exc.args[0] if exc.args else None
    if hasattr(first, "stdout_bytes"):  # testinfra's CommandResult (ssh:// raises one for rc 255)
        return Answer(first.rc, first.stdout_bytes, first.stderr_bytes, type(exc).__name__)
    # The first line: pytest's assertion rewriting adds reprs of the backend's objects after it.
    text = re.sub(r"backend=<[^>]*>|<[^>]* at 0x[0-9a-f]+>", "<...>", str(exc).split("\n", 1)[0])
    return Answer(None, text, None, type(exc).__name__)


def ask_all(host: Any, raw: list[tuple[str, str]], modules: list[ModuleQuery]) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    for query_id, command in raw:
        try:
            result = host.run(command)
            answers[query_id] = Answer(result.rc, result.stdout_bytes, result.stderr_bytes)
        except Exception as exc:
            answers[query_id] = _exception(exc)
    for query in modules:
        try:
            answers[query.id] = Answer(None, query.ask(host), None)
        except Exception as exc:
            answers[query.id] = _exception(exc)
    return answers


def signal_death(query_id: str, stock: Answer, suite: Answer) -> bool:
    """DELIBERATE 1: ssh exits 255 both when the command exits 255 and when a signal kills it, and
    testinfra's ssh:// then raises RuntimeError; the suite's backends return the exit code (255,
    or 128+N for signal N from ssh+persist://, -1 from paramiko://). Output must still be equal."""
    return (
        stock.raised == "RuntimeError"
        and stock.rc == 255
        and not suite.raised
        and (suite.rc == 255 or suite.rc == -1 or 128 < suite.rc < 160)
        and (stock.stdout, stock.stderr) == (suite.stdout, suite.stderr)
    )


def arg_too_long(query_id: str, stock: Answer, suite: Answer) -> bool:
    """DELIBERATE 2: testinfra's ssh:// passes the command as one argument of a local `sh -c`, which
    Linux refuses past 128 KiB (MAX_ARG_STRLEN): it raises OSError (E2BIG) on the runner. The suite's
    backends send the command over the connection; the host's own limit then applies, as under an
    ssh:// with a shorter local command line."""
    return stock.raised == "OSError" and "Argument list too long" in str(stock.stdout)


DELIBERATE = (signal_death, arg_too_long)


# Queries whose output holds a process id (bash's "PID Killed" line, `ps` of `$$`): numbers are
# compared as N, the rest byte for byte.
VOLATILE = re.compile(r"^(kill-child-|shell-18$)")
NUMBER = re.compile(rb" *[0-9]+")


def _without_numbers(answer: Answer) -> Answer:
    mask = lambda data: NUMBER.sub(b"N", data) if isinstance(data, bytes) else data  # noqa: E731
    return Answer(answer.rc, mask(answer.stdout), mask(answer.stderr), answer.raised)


def differences(stock: dict[str, Answer], suite: dict[str, Answer]) -> list[str]:
    found = []
    for query_id, expected in stock.items():
        got = suite[query_id]
        if VOLATILE.match(query_id):
            expected, got = _without_numbers(expected), _without_numbers(got)
        if got == expected or any(allowed(query_id, expected, got) for allowed in DELIBERATE):
            continue
        for field in ("raised", "rc", "stdout", "stderr"):
            want, have = getattr(expected, field), getattr(got, field)
            if want != have:
                found.append(f"{query_id}: {field}: {_first_difference(want, have)}")
    return found


def _first_difference(want: Any, have: Any) -> str:
    if isinstance(want, bytes | str) and isinstance(have, bytes | str) and type(want) is type(have):
        at = next(
            (i for i, (a, b) in enumerate(zip(want, have, strict=False)) if a != b), min(len(want), len(have))
        )
        return (
            f"at byte {at}: ssh:// {want[at : at + 60]!r} ({len(want)} long), "
            f"suite {have[at : at + 60]!r} ({len(have)} long)"
        )
    return f"ssh:// {str(want)[:160]!r} / suite {str(have)[:160]!r}"


# -- fixtures and tests -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parity_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    if os.geteuid() != 0:
        pytest.skip("a loopback sshd letting root in needs root")
    folder = tmp_path_factory.mktemp("parity-sshd")
    home = folder / "home"
    home.mkdir()
    (home / ".bashrc").write_text(BASHRC)
    with loopback_sshd(folder, extra_config=f"SetEnv HOME={home}\n") as server:
        yield server


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parity-data")
    (folder / "ten-mib").write_bytes(bytes(range(256)) * (40 << 10))
    (folder / "binary").write_bytes(os.urandom(300_000))
    (folder / "unicode-ü").write_bytes("naïve ✓\n".encode() + b"\xff\xfe invalid\n")
    (folder / "link").symlink_to(folder / "binary")
    (folder / "scratch").mkdir()
    return folder


@pytest.fixture(scope="module")
def queries(data: Path, parity_sshd: LoopbackSshd) -> tuple[list[tuple[str, str]], list[ModuleQuery]]:
    return raw_queries(data), module_queries(data, parity_sshd.port)


def stock_answers(sshd: LoopbackSshd, queries: Any, control: Path) -> dict[str, Answer]:
    import testinfra

    host = testinfra.get_host(sshd.spec("ssh"), controlpath=str(control))
    try:
        return ask_all(host, *queries)
    finally:
        subprocess.run(
            ["ssh", "-F", str(sshd.ssh_config), "-o", f"ControlPath={control}", "-O", "exit", "127.0.0.1"],
            capture_output=True,
            check=False,
        )


def suite_answers(sshd: LoopbackSshd, scheme: str, queries: Any) -> dict[str, Answer]:
    connection = Connection(sshd.spec(scheme), connect_timeout=10)
    try:
        return ask_all(connection.testinfra_host, *queries)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def answers(
    parity_sshd: LoopbackSshd, queries: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Answer]]:
    """Every backend's answers, the backends side by side (each one's queries in order)."""
    control = tmp_path_factory.mktemp("parity-mux") / "cm"
    with ThreadPoolExecutor(max_workers=1 + len(SUITE_SCHEMES)) as pool:
        stock = pool.submit(stock_answers, parity_sshd, queries, control)
        suite = {scheme: pool.submit(suite_answers, parity_sshd, scheme, queries) for scheme in SUITE_SCHEMES}
        return {"ssh": stock.result()} | {scheme: future.result() for scheme, future in suite.items()}


def test_there_are_enough_queries(queries: Any) -> None:
    raw, modules = queries
    ids = [query_id for query_id, _ in raw] + [query.id for query in modules]
    assert len(ids) == len(set(ids)) and len(ids) >= 300, len(ids)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", SUITE_SCHEMES)
def test_the_suites_backend_answers_as_ssh_does(scheme: str, answers: dict[str, dict[str, Answer]]) -> None:
    found = differences(answers["ssh"], answers[scheme])
    assert not found, f"{len(found)} differences from ssh://:\n" + "\n".join(found)
