"""An SQLite file on a host, read without touching it: an immutable, read-only open.

Shared by the kinds that read SQLite files (sqlite: the live database; backups: a copy).
`sqlite3` on the host, else its python3; the query runs there and only its answer travels.
"""

from __future__ import annotations

import urllib.parse

from runbook.errors import CheckError, CheckFailed
from runbook.host.target import Result, Target

# One read-only query (the last argument) on the host. Exit 3: no such file; 4: neither
# sqlite3 nor python3 there.
QUERY = (
    'p=%s; uri=%s; q=%s; [ -f "$p" ] || exit 3; '
    'if command -v sqlite3 >/dev/null 2>&1; then sqlite3 -bail "$uri" "$q"; '
    "elif command -v python3 >/dev/null 2>&1; then python3 -c 'import sqlite3, sys; "
    "rows = sqlite3.connect(sys.argv[1], uri=True).execute(sys.argv[2]); "
    'print("\\n".join(str(row[0]) for row in rows))'
    '\' "$uri" "$q"; else exit 4; fi'
)


NOT_A_DATABASE = ("not a database", "malformed", "corrupt", "DatabaseError")


def immutable_uri(path: str) -> str:
    """`file:` URI of a read-only, lock-free open that never creates -wal/-shm files."""
    return f"file:{urllib.parse.quote(path, safe='/')}?mode=ro&immutable=1"


def query(path: str, sql: str, target: Target) -> Result:
    """One read-only query on an immutable open of the file, on the host."""
    return target.run(QUERY, path, immutable_uri(path), sql)


def table_names(path: str, target: Target) -> list[str]:
    """The tables of a SQLite file (CheckError if it cannot be read)."""
    result = query(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name;", target)
    if result.rc != 0:
        said = result.stderr.strip()[:300] or f"exit {result.rc}"
        raise CheckError(f"listing the tables of {path}: {said}")
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def check_integrity(path: str, target: Target) -> None:
    """CheckFailed unless PRAGMA integrity_check says ok (read twice: a write may be under way)."""
    expected = f"{path} passes PRAGMA integrity_check"
    for _attempt in range(2):
        result = query(path, "PRAGMA integrity_check;", target)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if result.rc == 0 and lines == ["ok"]:
            return
    if result.rc == 3:
        raise CheckFailed(expected, f"{path} does not exist")
    if result.rc == 4:
        raise CheckError(f"cannot check {path}: neither sqlite3 nor python3 on the host")
    said = result.stderr.strip()
    if result.rc != 0 and not any(word in said for word in NOT_A_DATABASE):
        raise CheckError(f"PRAGMA integrity_check on {path}: {said[:300] or f'exit {result.rc}'}")
    found = "; ".join(lines[:3]) or said.splitlines()[-1][:300]
    more = f" (+{len(lines) - 3} more problems)" if len(lines) > 3 else ""
    evidence = {"PRAGMA integrity_check": "\n".join(lines[:100]) or said[:2000]}
    raise CheckFailed(expected, f"{path} is damaged: {found}{more}", evidence)
