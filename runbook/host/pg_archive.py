"""pg_dump custom-format archives (`pgdump_YYYYmmdd_HHMMSS.dump`): read them, restore them.

`pg_restore --list` reads only the header and the table of contents, so a dump
cut short lists fine; reading every data block (`pg_restore --file=/dev/null`)
is what finds a truncated or corrupt one. On the runner both read one stream
of the dump at once (it is never stored), fed from the host's `cat`; on the
host they read the file. The runner's pg_restore (PostgreSQL 15) reads dumps
made by pg_dump 15 and older: a newer dump is a check that could not look, and
says so (`pg_restore: host` uses the server's own).
"""

from __future__ import annotations

from typing import IO

from runbook.errors import CheckError, CheckFailed, CommandTimeout
from runbook.host.processes import feed_processes
from runbook.host.target import Target
from runbook.host.transports import TransportTimeout

LIST = ["pg_restore", "--list"]
READ_ALL = ["pg_restore", "--file=/dev/null"]
# pg_restore's words for "this pg_restore is too old for the archive", not a broken archive.
TOO_NEW = "unsupported version"


def entries(listing: str) -> list[str]:
    """The TOC entries of `pg_restore --list` (its `;` lines are comments)."""
    return [line for line in listing.splitlines() if line.strip() and not line.startswith(";")]


def read_on_runner(stream: IO[bytes], path: str, timeout: float) -> list[str]:
    """List and fully read a dump streamed from the host; its TOC entries, or a failure."""
    try:
        listed, read = feed_processes(stream, [LIST, READ_ALL], timeout=timeout)
    except FileNotFoundError:
        raise CheckError(
            "pg_restore is not installed on the runner (apt-get install postgresql-client)"
        ) from None
    except TransportTimeout:
        raise CommandTimeout(f"reading {path} with pg_restore took longer than {timeout:g}s") from None
    for done in (listed, read):
        _judge(done.rc, done.stderr.decode(errors="replace"), path, where="runner")
    return entries(listed.stdout.decode(errors="replace"))


def read_on_host(target: Target, path: str, timeout: float) -> list[str]:
    """The same with the host's pg_restore reading the file (its version matches the server's)."""
    listed = target.run("pg_restore --list -- %s", path, timeout=timeout)
    _judge(listed.rc, listed.stderr, path, where=target.name)
    read = target.run("pg_restore --file=/dev/null -- %s", path, timeout=timeout)
    _judge(read.rc, read.stderr, path, where=target.name)
    return entries(listed.stdout)


def _judge(rc: int, stderr: str, path: str, *, where: str) -> None:
    if rc == 0:
        return
    said = " ".join(stderr.split())[-400:] or f"exit {rc}"
    if TOO_NEW in said:
        raise CheckError(f"the pg_restore on the {where} cannot read {path}: {said}")
    if "not found" in said and "pg_restore" in said:
        raise CheckError(f"no pg_restore on the {where}: {said}")
    raise CheckFailed(
        f"{path} is a readable pg_dump archive (pg_restore --list, every data block read)",
        f"{path} is corrupt: {said}",
    )
