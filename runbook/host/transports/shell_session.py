"""One long-lived /bin/sh on an SSH channel, running commands one after another.

Why: a new SSH session per command costs a channel, sshd's session setup (PAM on most
servers) and a login shell; a shell kept open costs one fork per command.

Nothing is installed on the host: requests are plain POSIX sh written to the shell's
stdin, one line each, with a fresh random token T:

    printf %s 'T{'; printf %s 'T{' >&2; ( eval 'LINE' ) </dev/null & wait $!; r=$?;
    kill -9 -$! 2>/dev/null && echo 'NOTE' >&2; printf 'T}%d\\n' "$r"; printf %s 'T}' >&2

- The command runs in a subshell: its `cd`, `export`, `umask`, `exit` and traps end with
  it, so nothing leaks into the next command, and the shell itself keeps the environment
  and working directory of a fresh login. Its stdin is /dev/null.
- The subshell is a job of its own ($!). A command that makes itself a process group
  (Target's `exec timeout ...` does) gets that group killed once it exits, so what it left
  running in the background ends with it, without a wrapper process per command.
- Its stdout and stderr go straight to the channel's two streams between the token's
  markers, the exit code after stdout's end marker: exact and binary-safe without temp
  files or encoding, and streamed (nothing is stored on the host). Bytes outside a frame
  (a login banner, a process an earlier command left behind) are discarded.
- The start markers say the shell took the request: a shell found dead before them never
  ran the command, so the caller may safely run it again on a new session.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import shlex
import time
from typing import Any

from runbook.host.processes import CHUNK, Capped, Raw, TransportTimeout

# How long the channel may keep delivering data after the shell's exit status arrived.
DEATH_GRACE = 0.5
# Bytes kept of what a stream said outside a frame (a shell that died says why there).
STRAY_KEPT = 2048
# Said on the command's stderr when its process group outlived it and was killed.
LEFT_BEHIND = "[runbook: the command left processes running in the background; they were killed]"


class SessionLost(Exception):
    """The shell ended; `started` says whether it had already taken the command."""

    def __init__(self, message: str, *, started: bool) -> None:
        super().__init__(message)
        self.started = started


class Framed:
    """One output stream of one command: the bytes between its start and end markers."""

    def __init__(self, start: bytes, end: bytes) -> None:
        self.start = start
        self.end = end
        self.body = Capped()
        self.pending = b""
        self.started = False
        self.ended = False
        self.trailer = b""  # what follows the end marker: the exit code, on stdout
        self.before = Capped(STRAY_KEPT)  # what came before the frame: said if the shell dies

    def feed(self, data: bytes) -> None:
        if self.ended:
            self.trailer += data
            return
        self.pending += data
        if not self.started:
            at = self.pending.find(self.start)
            if at < 0:  # still before the frame: keep only what could begin the marker
                keep = len(self.start) - 1
                self.before.add(self.pending[:-keep])
                self.pending = self.pending[-keep:]
                return
            self.before.add(self.pending[:at])
            self.pending = self.pending[at + len(self.start) :]
            self.started = True
        at = self.pending.find(self.end)
        if at >= 0:
            self.body.add(self.pending[:at])
            self.trailer = self.pending[at + len(self.end) :]
            self.pending = b""
            self.ended = True
            return
        keep = len(self.end) - 1  # a marker may be split across two reads
        if len(self.pending) > keep:
            self.body.add(self.pending[:-keep])
            self.pending = self.pending[-keep:]

    @property
    def exit_code(self) -> int | None:
        """The number after the end marker, once its line is complete."""
        line, newline, _ = self.trailer.partition(b"\n")
        return int(line) if newline and line.isdigit() else None


def request(line: str, token: str) -> bytes:
    start, end = f"{token}{{", f"{token}}}"
    text = (
        f"printf %s '{start}'; printf %s '{start}' >&2; ( eval {shlex.quote(line)} ) </dev/null & "
        f"wait $!; r=$?; kill -9 -$! 2>/dev/null && echo '{LEFT_BEHIND}' >&2; "
        f"printf '{end}%d\\n' \"$r\"; printf %s '{end}' >&2\n"
    )
    return text.encode("utf-8", errors="surrogateescape")


class ShellSession:
    """A shell on an open paramiko channel; one command at a time (the caller serializes)."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.pid = 0  # the shell's process id on the host, which is also its process group

    @classmethod
    def start(cls, channel: Any, *, timeout: float) -> ShellSession:
        """Start the shell and learn its pid (raises SessionLost or TransportTimeout)."""
        # The login shell may be bash, zsh or fish: the session always runs sh.
        channel.exec_command("exec /bin/sh -s")
        session = cls(channel)
        # `$$` in a subshell is the shell's own pid.
        said = session.run('printf %s "$$"', deadline=time.monotonic() + timeout)
        session.pid = int(said.stdout)
        return session

    def run(self, line: str, *, deadline: float) -> Raw:
        """Run one command; SessionLost if the shell ends, TransportTimeout at the deadline."""
        token = secrets.token_hex(16)
        stdout = Framed(f"{token}{{".encode(), f"{token}}}".encode())
        stderr = Framed(stdout.start, stdout.end)
        try:
            self.channel.sendall(request(line, token))
        except (OSError, EOFError) as exc:
            raise SessionLost(
                f"the session's shell is gone ({exc or type(exc).__name__})", started=False
            ) from None
        gone_at: float | None = None
        while stdout.exit_code is None or not stderr.ended:
            now = time.monotonic()
            if now >= deadline:
                raise TransportTimeout("no answer from the session's shell by the deadline")
            select.select([self.channel], [], [], min(deadline - now, 0.25))
            # One chunk each per pass: endless output must not keep us from the deadline.
            if self.channel.recv_ready():
                stdout.feed(self.channel.recv(CHUNK))
            if self.channel.recv_stderr_ready():
                stderr.feed(self.channel.recv_stderr(CHUNK))
            pending = self.channel.recv_ready() or self.channel.recv_stderr_ready()
            complete = stdout.exit_code is not None and stderr.ended
            if not (pending or complete) and (self.channel.exit_status_ready() or self.channel.eof_received):
                # The shell ended; data still in flight gets a moment, unless the stream is over.
                gone_at = gone_at or now
                if self.channel.eof_received or now - gone_at > DEATH_GRACE:
                    raise self._lost(stdout, stderr)
        code = stdout.exit_code
        assert code is not None
        dropped = stdout.body.dropped + stderr.body.dropped
        return Raw(code, stdout.body.value(), stderr.body.value(), dropped)

    def _lost(self, stdout: Framed, stderr: Framed) -> SessionLost:
        started = stdout.started or stderr.started
        status = self.channel.recv_exit_status() if self.channel.exit_status_ready() else None
        said = stderr.before.value() + stderr.pending + stdout.before.value() + stdout.pending
        when = "while it ran the command" if started else "before it took the command"
        detail = f" (exit status {status})" if status is not None and status >= 0 else ""
        ssh = self.channel.get_transport()
        if ssh is not None and not ssh.is_active():
            detail += " (the SSH connection was dropped)"
        text = said.decode("utf-8", errors="backslashreplace").strip()[-300:]
        return SessionLost(
            f"the session's shell ended {when}{detail}{': ' + text if text else ''}", started=started
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.close()
