"""Shared building blocks of the lab: paths, errors, the Fault record, processes and waiting.

Every part of the lab kit (hosts, containers, backups, the `LabSystem` base) builds on these.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def lab_dir() -> Path:
    """State dir (survives `down`); overridable so tests can use a scratch location."""
    return Path(os.environ.get("RUNBOOK_LAB_DIR", "/var/lib/runbook-lab"))


def run_dir() -> Path:
    """Runtime dir for sockets and pid files (gone after a reboot, like /run on a server)."""
    return Path(os.environ.get("RUNBOOK_LAB_RUN_DIR", "/run/runbook-lab"))


class LabError(Exception):
    """The lab could not reach the requested state (CLI exit code 1)."""


class UsageError(LabError):
    """The caller asked for something that does not exist (CLI exit code 2)."""


@dataclass(frozen=True)
class Fault:
    """One failure from the runbook that can be injected into a system and healed.

    `expected_failures` are the suite's check ids predicted to fail while the fault is
    active; `inject` must return only once the failure is observable. `recreate` names the
    containers heal rebuilds so no trace (logs, restart counts) of the faulted run remains;
    `restart_daemon` also flushes dockerd's in-memory event log (OOM/die events).
    """

    name: str
    description: str
    expected_failures: frozenset[str]
    inject: Callable[[], None] = field(repr=False, compare=False)
    recreate: frozenset[str] = frozenset()
    restart_daemon: bool = False
    may_fail: frozenset[str] = frozenset()  # red or not by timing; the run's red set lies between
    system: str = ""
    # Faults whose symptoms this one hides when both are injected (bench/fault_pairs.py): their
    # checks may stay green beside it, for the reason given. `replaces`: the same, only when this
    # one is injected after the other (a newer backup placed over a stale one).
    hides: Mapping[str, str] = field(default_factory=dict, compare=False)
    replaces: Mapping[str, str] = field(default_factory=dict, compare=False)


def fault(
    name: str,
    description: str,
    *,
    fails: Iterable[str],
    inject: Callable[[], None],
    recreate: Iterable[str] = (),
    restart_daemon: bool = False,
    may_fail: Iterable[str] = (),
    hides: Mapping[str, str] | None = None,
    replaces: Mapping[str, str] | None = None,
) -> Fault:
    """One row of a fault table (`system` is filled in by the system that lists it).

    `may_fail`: checks the fault turns red or not depending on when they look (a crash loop's
    process runs for a moment between restarts), beside the ones it always turns red.
    `hides`: other faults of the table whose symptoms cannot show beside this one, and why;
    `replaces`: those whose symptoms this one ends when injected after them."""
    return Fault(
        name=name,
        description=description,
        expected_failures=frozenset(fails),
        may_fail=frozenset(may_fail),
        inject=inject,
        recreate=frozenset(recreate),
        restart_daemon=restart_daemon,
        hides=dict(hides or {}),
        replaces=dict(replaces or {}),
    )


@dataclass(frozen=True)
class Component:
    """One line of `status`: a named part of a system, whether it is fine, and a detail."""

    name: str
    ok: bool
    detail: str


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | bytes | None = None,
    timeout: float | None = 60,
    text: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[Any]:
    """Run a command, capturing output; raise LabError with its stderr when it fails."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode(errors="replace")
        raise LabError(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()[-2000:]}")
    return proc


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until `predicate` returns something truthy; every wait in the lab is bounded."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


@contextlib.contextmanager
def lab_lock(system: str) -> Iterator[None]:
    """Serialise mutating commands on one system: tests and a human may drive it at once.

    Per system: each has its own hosts and dockerd, so two systems' faults and heals may run
    side by side (the selftests do, one worker per system). Files every system writes (lab.env,
    the SSH config and known_hosts) are edited under `file_lock`."""
    with file_lock(lab_dir() / f".lock-{system}"):
        yield


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (made if missing): a read-modify-write of a shared file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def pid_alive(pid: int | None) -> bool:
    """True if `pid` runs and is not a zombie (a dead daemon we spawned may linger as one)."""
    if not pid:
        return False
    try:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pidfile(path: Path) -> int | None:
    """The pid in `path` if the process it names is still alive.

    This machine's pid_max is 32768 and a `make test` starts thousands of processes: a pidfile
    left by a daemon that died names, minutes later, someone else (a heal once sent SIGTERM to
    a checklist run of another system that had the squatter's old pid). A process that started
    after the pidfile was last written is not the one it names.
    """
    try:
        pid = int(path.read_text().strip())
        written = path.stat().st_mtime
    except (FileNotFoundError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    started = process_start(pid)
    return None if started is None or started > written + PID_CLOCK_SLACK else pid


# Seconds a process may seem to have started after its own pidfile: /proc's start time is boot
# time plus ticks, and on a VM that was paused it read 11 s after the pidfile dockerd had written
# (1 s of slack called a healthy dockerd dead; `make demo` then failed on "pid file found").
# A squatter on a dead daemon's pid starts minutes later.
PID_CLOCK_SLACK = 60.0


def process_start(pid: int) -> float | None:
    """When `pid` started (epoch seconds), from /proc; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (FileNotFoundError, ProcessLookupError, IndexError, StopIteration):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks


def spawn_daemon(argv: Sequence[str], log: Path) -> int:
    """Start a long-running process detached from us (own session, reparented to init).

    Going through `sh ... &` means the daemon is never our child, so a long-lived caller
    (a pytest session doing many heals) does not accumulate zombies.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = run(
        ["sh", "-c", 'exec </dev/null; setsid "$@" >>"$LAB_LOG" 2>&1 & echo $!', "sh", *argv],
        env={**os.environ, "LAB_LOG": str(log)},
        timeout=10,
    )
    return int(proc.stdout.strip())


def stop_pid(pid: int | None, *, timeout: float = 20, what: str = "process") -> None:
    """SIGTERM a process we started and wait for it; SIGKILL if it will not go."""
    if not pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), timeout=5, what=f"{what} {pid} to die")


def require(needs: dict[str, str]) -> None:
    """Fail early, naming the Debian packages, when a program the lab runs is missing.

    `needs` maps an absolute path or a command name to the package that provides it.
    """
    missing = sorted(
        {
            pkg
            for what, pkg in needs.items()
            if not (Path(what).exists() if what.startswith("/") else shutil.which(what))
        }
    )
    if missing:
        raise LabError(f"missing on this machine; apt-get install {' '.join(missing)}")


def random_token(prefix: str = "lab-", nbytes: int = 16) -> str:
    """A fresh fake secret; per lab so nothing real-looking is shared between machines."""
    return prefix + secrets.token_hex(nbytes)


def write_file(path: Path, content: str | bytes, mode: int = 0o644) -> bool:
    """Write only if the content differs; returns whether it changed (keeps `up` a no-op)."""
    data = content.encode() if isinstance(content, str) else content
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o7777) == mode:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


class JsonState:
    """A small JSON document in the state dir (active faults and their bookkeeping)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        write_file(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)


def upsert_env_line(path: Path, key: str, value: str | None) -> None:
    """Set or (value None) drop `key=value` in a shell-style env file, keeping other lines."""
    with file_lock(path.with_name(f".{path.name}.lock")):
        _upsert_env_line(path, key, value)


def _upsert_env_line(path: Path, key: str, value: str | None) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [ln for ln in lines if not ln.startswith(f"{key}=")]
    if value is not None:
        kept.append(f"{key}={value}")
    if kept:
        write_file(path, "\n".join(kept) + "\n", 0o600)
    elif path.exists():
        path.unlink()
