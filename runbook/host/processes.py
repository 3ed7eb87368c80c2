"""Processes on the runner: started with a copied environment, read with a cap, killed as a group.

The one public module for running a local program (ssh, gpg, pg_restore, redis-cli, a
VLESS client): transports build on it, and kinds that run a local tool use it, never a
transport's internals. Every process gets its own session, so a deadline kills all it started.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

# What is kept of one stream of a command's output: the first and the last half.
OUTPUT_CAP = 4 << 20


CHUNK = 1 << 16


class TransportTimeout(Exception):
    """The transport itself did not finish by the deadline (the command may still run)."""


class SpawnError(Exception):
    """This machine could not start the transport's own program (out of processes, memory):
    a fault of the runner, not of the host, so the host keeps its verdict."""


def allow_open_files(wanted: int = 65_536) -> None:
    """Raise this process's soft limit of open files toward its hard limit: every host holds a
    connection and its channels, and Debian's default soft limit of 1,024 runs out near 300 hosts
    (the hard limit, usually 524,288 or more, is what the administrator allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def readable(sources: list[Any], timeout: float) -> list[Any]:
    """Those of `sources` (sockets, paramiko channels: anything with fileno()) readable within
    `timeout` seconds. poll, not select.select: select refuses descriptors from 1024 up, and a run
    of 300 hosts holds more ("ValueError: filedescriptor out of range in select()" failed 2,800
    of 4,500 checks in bench_scaling, and silently closed port tunnels)."""
    poller = select.poll()
    by_fd = {}
    for source in sources:
        by_fd[source.fileno()] = source
        poller.register(source.fileno(), select.POLLIN | select.POLLPRI)
    ready = poller.poll(max(0.0, timeout) * 1000)
    return [by_fd[fd] for fd, _ in ready if fd in by_fd]


def spawn(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen, with a failure to start told apart from a missing program."""
    try:
        return subprocess.Popen(argv, **options)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SpawnError(f"the runner could not start {argv[0]}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Raw:
    """What came back: exit code and bytes, with `dropped` bytes cut out of the middle."""

    rc: int
    stdout: bytes
    stderr: bytes
    dropped: int = 0


class Capped:
    """Keeps the head and the tail of a byte stream up to a cap; counts what it drops."""

    def __init__(self, cap: int = OUTPUT_CAP) -> None:
        self.half = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.half
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def value(self) -> bytes:
        if not self.dropped:
            return bytes(self.head + self.tail)
        note = f"\n[... {self.dropped} bytes of output not kept ...]\n".encode()
        return bytes(self.head) + note + bytes(self.tail)


def child_environment(env: dict[str, str] | None) -> dict[str, str]:
    """The environment to start a local process with, always as a copy taken now.

    With env=None the child reads the C `environ` while it execs, and pytest rewrites
    PYTEST_CURRENT_TEST in the main thread at every phase: a check run ahead in another
    thread then saw its exec fail with EFAULT ('Bad address: /bin/sh') now and then.
    """
    return environment_now() if env is None else env


def environment_now() -> dict[str, str]:
    """os.environ copied now, whatever another thread does to it meanwhile.

    pytest sets and deletes PYTEST_CURRENT_TEST in the main thread at every phase, and
    `dict(os.environ)` reads the keys, then each value: a key deleted in between raised
    KeyError in a check run ahead in another thread (on CI: a red check whose whole finding
    was "KeyError: 'PYTEST_CURRENT_TEST'"). The keys are listed at once; one gone by the time
    its value is read is left out.
    """
    return {key: value for key in list(os.environ) if (value := os.environ.get(key)) is not None}


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a local process started with start_new_session, and everything it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class StreamEnd:
    """How a streamed command ended, known after the stream is closed."""

    def __init__(self) -> None:
        self.rc: int | None = None
        self.stderr = b""
        self.expired = False


EXIT_GRACE = 1.0


KILLED_NOTE = b"\n[runbook: processes the command left behind held its output open; they were killed]\n"


def _spawn_reading(argv: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    """argv in a session of its own (its group dies at the deadline), stdin closed, output piped."""
    return spawn(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=child_environment(env),
    )


def run_process(argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> Raw:
    """Run argv with its output capped; kill its process group at the deadline."""
    started = time.monotonic()
    process = _spawn_reading(argv, env)
    outputs = {"stdout": Capped(), "stderr": Capped()}
    selector = selectors.DefaultSelector()
    assert process.stdout is not None and process.stderr is not None
    selector.register(process.stdout, selectors.EVENT_READ, "stdout")
    selector.register(process.stderr, selectors.EVENT_READ, "stderr")
    exited_at: float | None = None
    held_open = False
    try:
        while selector.get_map():
            now = time.monotonic()
            if now - started > timeout:
                kill_group(process)
                raise TransportTimeout(f"no answer within {timeout:g}s")
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > EXIT_GRACE:
                held_open = True
                kill_group(process)
                break
            for key, _ in selector.select(timeout=0.2):
                data = os.read(key.fileobj.fileno(), CHUNK)  # type: ignore[union-attr]
                if data:
                    outputs[key.data].add(data)
                else:
                    selector.unregister(key.fileobj)
    finally:
        selector.close()
        process.stdout.close()
        process.stderr.close()
        if process.poll() is None and (time.monotonic() - started > timeout or held_open):
            kill_group(process)
        process.wait()
    stderr = outputs["stderr"].value() + (KILLED_NOTE if held_open else b"")
    dropped = outputs["stdout"].dropped + outputs["stderr"].dropped
    return Raw(process.returncode, outputs["stdout"].value(), stderr, dropped)


@contextlib.contextmanager
def stream_process(
    argv: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> Iterator[tuple[IO[bytes], StreamEnd]]:
    """argv's stdout as a stream; the deadline kills the whole group (the reader then sees EOF)."""
    process = _spawn_reading(argv, env)
    end = StreamEnd()

    def expire() -> None:
        end.expired = True
        kill_group(process)

    timer = threading.Timer(timeout, expire)
    timer.start()
    errors = Capped(64 << 10)
    reader = threading.Thread(target=_drain_into, args=(process.stderr, errors), daemon=True)
    reader.start()
    try:
        assert process.stdout is not None
        yield process.stdout, end
    finally:
        timer.cancel()
        kill_group(process)
        process.wait()
        reader.join(timeout=5)
        assert process.stdout is not None
        process.stdout.close()
        end.rc = process.returncode
        end.stderr = errors.value()


def feed_processes(
    source: IO[bytes], argvs: list[list[str]], *, timeout: float, env: dict[str, str] | None = None
) -> list[Raw]:
    """Stream `source` into the stdin of several local commands at once (the source is read once).

    A command that stops reading (pg_restore --list after the TOC) just stops being fed;
    outputs are capped; at the deadline every process group is killed (TransportTimeout).
    """
    processes = [
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=child_environment(env),
        )
        for argv in argvs
    ]
    outputs = [(Capped(), Capped()) for _ in processes]
    readers = [
        threading.Thread(target=_drain_into, args=(stream, sink), daemon=True)
        for process, sinks in zip(processes, outputs, strict=True)
        for stream, sink in zip((process.stdout, process.stderr), sinks, strict=True)
    ]
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for process in processes:
            kill_group(process)

    timer = threading.Timer(timeout, expire)
    timer.start()
    for reader in readers:
        reader.start()
    feeding = [process.stdin for process in processes if process.stdin is not None]
    try:
        while feeding and (chunk := source.read(CHUNK)):
            for stdin in list(feeding):
                try:
                    stdin.write(chunk)
                except (BrokenPipeError, OSError, ValueError):
                    feeding.remove(stdin)
    finally:
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.close()  # type: ignore[union-attr]
        for process in processes:
            process.wait()
        timer.cancel()
        for reader in readers:
            reader.join(timeout=5)
    if expired.is_set():
        raise TransportTimeout(f"not finished within {timeout:g}s")
    return [
        Raw(process.returncode, stdout.value(), stderr.value(), stdout.dropped + stderr.dropped)
        for process, (stdout, stderr) in zip(processes, outputs, strict=True)
    ]


def _drain_into(stream: IO[bytes] | None, sink: Capped) -> None:
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        while data := stream.read(CHUNK):
            sink.add(data)
