"""The generic kinds the Loyalty API runbook (issue 9) needs, each proved both ways on loopback.

backups of plain `pg_dump | gzip` files (a real pg_dump of a real PostgreSQL 15),
the postgres kind's `prisma` aspect (a real `_prisma_migrations` table), metric
rates from the suite's own samples and from a real Prometheus server, and the
HTTP scenario kind (selftests/loyalty_app.py).
"""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runbook.checks import backups
from runbook.checks.backups import BackupCheck
from runbook.hosts import Target
from runbook.outcome import CheckFailed
from selftests.data_servers import Postgres

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "Бэкапы", "remedy": "fix it"}


# -- backups: backup_YYYYMMDD.sql.gz ---------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_dump(postgres_server: Postgres) -> bytes:
    """A real plain-text `pg_dump` of the database, as scripts/backup.sh pipes it to gzip."""
    environment = {**os.environ, "PGPASSWORD": postgres_server.password}
    command = ["pg_dump", "-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", postgres_server.user]
    done = subprocess.run(
        [*command, postgres_server.database], env=environment, capture_output=True, check=True, timeout=120
    )
    return done.stdout


def put_sql_gz(folder: Path, text: bytes, name: str = "backup_20261123.sql.gz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(text))
    return path


def sql_gz_check(folder: Path, **fields: Any) -> BackupCheck:
    return BackupCheck(
        **COMMON, id="backup", directory=str(folder), pattern="backup_*.sql.gz", format="sql_gz", **fields
    )


def test_a_whole_sql_gz_dump_is_fresh_and_reads(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    put_sql_gz(tmp_path, plain_dump)
    backups.verify(sql_gz_check(tmp_path, max_age_hours=25), local)
    backups.verify(sql_gz_check(tmp_path, integrity=True), local)


def test_a_dump_cut_short_lacks_its_trailer(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    """gzip of a dump that pg_dump never finished: the gzip is whole, the SQL is not."""
    cut = plain_dump[: plain_dump.rindex(b"-- PostgreSQL database dump complete")]
    lines = cut.splitlines()
    tables = sum(line.startswith(b"CREATE TABLE ") for line in lines)
    copies = sum(line.startswith(b"COPY ") for line in lines)
    assert tables >= 4 and copies >= 4
    put_sql_gz(tmp_path, cut)
    with pytest.raises(CheckFailed) as failed:
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)
    assert failed.value.found == (
        f"{tmp_path}/backup_20261123.sql.gz is cut short: no '-- PostgreSQL database dump complete' "
        f"at its end ({tables} CREATE TABLE, {copies} COPY read)"
    )


def test_a_truncated_gzip_is_corrupt(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    path = put_sql_gz(tmp_path, plain_dump)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckFailed) as failed:
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)
    assert failed.value.found == (
        f"{path} is corrupt: EOFError: Compressed file ended before the end-of-stream marker was reached"
    )


def test_a_flipped_byte_fails_the_crc(plain_dump: bytes, tmp_path: Path, local: Target) -> None:
    path = put_sql_gz(tmp_path, plain_dump)
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # in the stored CRC-32
    path.write_bytes(bytes(data))
    with pytest.raises(CheckFailed, match=r"is corrupt: BadGzipFile: CRC check failed"):
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (b"hello\n", "does not start as a pg_dump does (no '-- PostgreSQL database dump' header)"),
        (
            b"--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n\n"
            b"--\n-- PostgreSQL database dump complete\n",
            "holds no CREATE TABLE and no COPY statement",
        ),
    ],
)
def test_not_a_dump_or_an_empty_one(text: bytes, said: str, tmp_path: Path, local: Target) -> None:
    path = put_sql_gz(tmp_path, text)
    with pytest.raises(CheckFailed) as failed:
        backups.verify(sql_gz_check(tmp_path, integrity=True), local)
    assert failed.value.found == f"{path} {said}"
