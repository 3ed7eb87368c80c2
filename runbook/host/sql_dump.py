"""A plain pg_dump piped through gzip (`backup_YYYYMMDD.sql.gz`), read as a stream.

What `backup-verify.sh` would want to know without restoring: the gzip stream is
whole (GzipFile checks the CRC and length at its end, and says when the stream
ends early), the text starts with pg_dump's header, it creates tables or copies
data, and it ends with pg_dump's "dump complete" trailer, which a dump cut short
(disk full, a killed pg_dump) lacks. Memory stays bounded: chunks are read, only
line starts are looked at, and the first and last few KiB are kept as evidence.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from typing import IO

CHUNK = 1 << 16
KEPT = 4096
# Only a line's start tells a statement; longer lines (COPY data) are cut to this.
LINE_PREFIX = 64
HEADER = re.compile(rb"^-- PostgreSQL database (cluster )?dump\s*$", re.M)
TRAILER = re.compile(rb"^-- PostgreSQL database (cluster )?dump complete\s*$", re.M)
CREATE_TABLE = re.compile(rb"^CREATE TABLE ", re.M)
COPY = re.compile(rb"^COPY ", re.M)


@dataclass(frozen=True)
class SqlDump:
    head: str
    tail: str
    create_tables: int
    copies: int
    corrupt: str | None

    def problem(self) -> str | None:
        """None for a whole dump, else what is wrong with it, as a failure message ends."""
        if self.corrupt:
            return f"is corrupt: {self.corrupt}"
        if not HEADER.search(self.head.encode()):
            return "does not start as a pg_dump does (no '-- PostgreSQL database dump' header)"
        if not self.create_tables and not self.copies:
            return "holds no CREATE TABLE and no COPY statement"
        if not TRAILER.search(self.tail.encode()):
            return (
                f"is cut short: no '-- PostgreSQL database dump complete' at its end "
                f"({self.create_tables} CREATE TABLE, {self.copies} COPY read)"
            )
        return None


def read(stream: IO[bytes], path: str) -> SqlDump:
    """Decompress `stream` to its end, counting statements; a broken gzip is said, not raised."""
    head = b""
    tail = b""
    carry = b""
    tables = copies = 0
    corrupt = None
    try:
        with gzip.GzipFile(fileobj=stream, filename=path) as plain:
            while chunk := plain.read(CHUNK):
                if len(head) < KEPT:
                    head += chunk[: KEPT - len(head)]
                tail = (tail + chunk)[-KEPT:]
                lines, _, carry = (carry + chunk).rpartition(b"\n")
                carry = carry[:LINE_PREFIX]
                tables += len(CREATE_TABLE.findall(lines))
                copies += len(COPY.findall(lines))
    except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as exc:
        corrupt = f"{type(exc).__name__}: {exc}"
    tables += bool(CREATE_TABLE.match(carry))
    copies += bool(COPY.match(carry))
    return SqlDump(_text(head), _text(tail), tables, copies, corrupt)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")
