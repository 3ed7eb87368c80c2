"""One long-lived /bin/sh on an SSH channel, running commands one after another.

Why: a new SSH session per command costs a channel, sshd's session setup (PAM on most
servers) and a login shell; a shell kept open costs one fork per command.

Nothing is installed on the host: requests are plain POSIX sh written to the shell's
stdin, one line each, with a fresh random token T:

    printf %s 'T{'; printf %s 'T{' >&2; ( set --; eval 'LINE' ) </dev/null 9>&- & wait $!; r=$?;
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

That is the suite's own path (`run`, capped, for Target's `exec timeout ...`). testinfra's API
needs a command to behave exactly as `ssh host 'LINE'` does (`run_exact`), so there:

- Each command starts from the environment sshd gave the login shell (read from
  /proc/PID/environ before the login shell's rc files changed it) and runs as sshd runs
  one: `$SHELL -c 'LINE'` of the user's login shell, named as sshd names it (so bash's
  messages say `bash:`), a process of its own (its own `$$`), in the foreground of a
  pipeline (SIGINT and SIGQUIT at their defaults, not ignored as in an `&` job), reading
  an empty pipe. The login shell reads its rc file per command, as under ssh://.
- Its stdout and stderr are pipes of their own, copied to the channel by one `cat` each:
  the frame ends when every holder of them closed (a background child that still writes
  keeps the result open, as an ssh channel stays open), never in the next command's frame.
- Every byte comes back (up to `limit`, past which the command fails rather than shrinks).
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import time
from typing import Any

from runbook.host.processes import CHUNK, Capped, Raw, TransportTimeout, readable

# How long the channel may keep delivering data after the shell's exit status arrived.
DEATH_GRACE = 0.5
# Bytes kept of what a stream said outside a frame (a shell that died says why there).
STRAY_KEPT = 2048
# The most a command may say through testinfra's API (the sum of stdout and stderr): all of it
# comes back, so this only bounds the runner's memory against a runaway command.
EXACT_LIMIT = 1 << 30
# Said on the command's stderr when its process group outlived it and was killed.
LEFT_BEHIND = "[runbook: the command left processes running in the background; they were killed]"


# Run by the login shell as the channel's command: /bin/sh reads the requests, with the
# environment the login shell exports (the suite's own commands see what ssh:// commands see),
# told the login shell's pid (the process group sshd made for the session), then the
# environment sshd gave the login shell, before its rc files changed it: testinfra's commands
# start from that, so their own login shell reads the rc files once, as under ssh://.
BOOT = (
    "exec 3<&0; if [ -r /proc/$$/environ ]; then "
    'cat /proc/$$/environ | exec xargs -0 /bin/sh -c \'exec /bin/sh -s "$0" "$@" <&3 3<&-\' "$$"; '
    'else exec /bin/sh -s "$$" <&3 3<&-; fi'
)
# The first line the session's shell reads. P: the process group; "$@": sshd's environment, and
# E the `env -i` that applies it (none where /proc is missing); S: the login shell as sshd runs
# it (by its bare name when sshd's PATH finds that same file, so $0 and messages read `bash`); fd 9:
# the channel's stdout.
SETUP = (
    "P=$1; shift; E=; [ $# -gt 0 ] && E='env -i'; "
    "S=${SHELL:-/bin/sh}; case $S in */*) n=${S##*/}; "
    '[ "$($E "$@" /bin/sh -c \'command -v "$0"\' "$n")" -ef "$S" ] && S=$n;; esac; '
    "unset n; exec 9>&1\n"
)


class OutputTooLarge(RuntimeError):
    """A command said more than the runner keeps in memory for one answer."""


class Whole:
    """Every byte of a stream, up to a limit shared by a command's two streams."""

    def __init__(self, budget: list[int]) -> None:
        self.data = bytearray()
        self.budget = budget  # bytes the command may still say, shared with its other stream
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self.budget[0] -= len(data)
        if self.budget[0] < 0:
            raise OutputTooLarge("the command said more than the runner keeps for one answer")
        self.data += data

    def value(self) -> bytes:
        return bytes(self.data)


class SessionLost(Exception):
    """The shell ended; `started` says whether it had already taken the command."""

    def __init__(self, message: str, *, started: bool) -> None:
        super().__init__(message)
        self.started = started


class Framed:
    """One output stream of one command: the bytes between its start and end markers."""

    def __init__(self, start: bytes, end: bytes, body: Capped | Whole | None = None) -> None:
        self.start = start
        self.end = end
        self.body = body if body is not None else Capped()
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
        f"printf %s '{start}'; printf %s '{start}' >&2; "
        f"( set --; eval {shlex.quote(line)} ) </dev/null 9>&- & "
        f"wait $!; r=$?; kill -9 -$! 2>/dev/null && echo '{LEFT_BEHIND}' >&2; "
        f"printf '{end}%d\\n' \"$r\"; printf %s '{end}' >&2\n"
    )
    return text.encode("utf-8", errors="surrogateescape")


def exact_request(line: str, token: str) -> bytes:
    """`$S -c LINE` with stdout and stderr through a `cat` each, framed once both are closed.

    The shell that waits for it says nothing (2>/dev/null): sh reports a command killed by a
    signal ("Terminated"), which no ssh:// command's output holds."""
    start, end = f"{token}{{", f"{token}}}"
    text = (
        f"printf %s '{start}'; printf %s '{start}' >&2; "
        f'r=$( {{ {{ {{ : | $E "$@" "$S" -c {shlex.quote(line)} 2>&1 >&4 3>&- 4>&- 9>&-; echo $? >&3; }} '
        "2>/dev/null | cat >&2; } 4>&1 | cat >&9; } 3>&1 ); "
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
        # The login shell may be bash, zsh or dash: the session always runs sh.
        channel.exec_command(BOOT)
        session = cls(channel)
        try:
            channel.sendall(SETUP.encode())
        except (OSError, EOFError) as exc:
            raise SessionLost(
                f"the session's shell is gone ({exc or type(exc).__name__})", started=False
            ) from None
        # P: the login shell's pid, the group leader of everything the session runs.
        said = session.run('printf %s "$P"', deadline=time.monotonic() + timeout)
        session.pid = int(said.stdout)
        return session

    def run(self, line: str, *, deadline: float) -> Raw:
        """Run one command; SessionLost if the shell ends, TransportTimeout at the deadline."""
        return self._exchange(request(line, token := secrets.token_hex(16)), token, deadline, None)

    def run_exact(self, line: str, *, deadline: float, limit: int = EXACT_LIMIT) -> Raw:
        """Run one command as `ssh host LINE` would, every byte kept (OutputTooLarge past `limit`)."""
        budget = [limit]
        return self._exchange(exact_request(line, token := secrets.token_hex(16)), token, deadline, budget)

    def _exchange(self, text: bytes, token: str, deadline: float, budget: list[int] | None) -> Raw:
        start, end = f"{token}{{".encode(), f"{token}}}".encode()
        stdout = Framed(start, end, None if budget is None else Whole(budget))
        stderr = Framed(start, end, None if budget is None else Whole(budget))
        try:
            self.channel.sendall(text)
        except (OSError, EOFError) as exc:
            raise SessionLost(
                f"the session's shell is gone ({exc or type(exc).__name__})", started=False
            ) from None
        gone_at: float | None = None
        while stdout.exit_code is None or not stderr.ended:
            now = time.monotonic()
            if now >= deadline:
                raise TransportTimeout("no answer from the session's shell by the deadline")
            readable([self.channel], min(deadline - now, 0.25))
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
