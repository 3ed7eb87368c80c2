"""Backups (runbook §4: `ls -t /root/backups/calendar/*.tar.gz* | head -1`, age, size, `tar tzf`).

The folder is listed once per run (`find -printf`, on the host). The integrity
check streams the newest archive to the runner and reads it with gzip and
tarfile in streaming mode, so the whole archive is never held in memory; a
`.gpg` archive is decrypted on the way by a local gpg, with the passphrase from
the environment given on a pipe (never on a command line, never on the host).
A PostgreSQL custom dump (`format: pg_custom`) is read by pg_restore instead
(`runbook.host.pg_archive`), a plain `pg_dump | gzip` (`format: sql_gz`) by
`runbook.host.sql_dump`. "Keep backups off the host" (`copy_on: backup-host`): the
newest backup is also on that host, same name, size and sha256.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import os
import subprocess
import tarfile
import tempfile
import threading
import zlib
from typing import IO, ClassVar, Literal

from pydantic import Field

from runbook.describe.model import CheckBase, HostPath
from runbook.describe.units import human_age
from runbook.errors import CheckError, CheckFailed
from runbook.host import pg_archive, sql_dump, sqlite
from runbook.host.backups import listing, newest
from runbook.host.processes import child_environment
from runbook.host.target import Target
from runbook.secrets.registry import SECRETS

CHUNK = 1 << 16


class BackupCheck(CheckBase):
    """The newest archive in a backup folder: age, size, integrity; and retention."""

    kind: ClassVar[str] = "backups"
    group: ClassVar[str] = "backup"
    default_markers: ClassVar[tuple[str, ...]] = ("daily",)
    aspects: ClassVar[tuple[str, ...]] = (
        "max_age_hours",
        "min_bytes",
        "integrity",
        "retention_days",
        "copy_on",
    )

    directory: HostPath
    pattern: str = Field(default="*.tar.gz*", min_length=1, pattern=r"^[^/\x00\n]+$")
    max_age_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    min_bytes: int | None = Field(default=None, ge=0, le=1 << 50)
    integrity: bool | None = None
    format: Literal["tar_gz", "pg_custom", "sql_gz", "sqlite"] = Field(
        default="tar_gz",
        description="tar_gz (tar tzf, gzip CRC), pg_custom (pg_dump -Fc, pg_restore), "
        "sql_gz (plain pg_dump | gzip: CRC, header, CREATE TABLE/COPY, trailer) "
        "or sqlite (a SQLite copy: integrity_check on a read-only open, `tables` present)",
    )
    tables: list[str] = Field(default=[], description="sqlite: tables every backup must hold")
    pg_restore_on: Literal["runner", "host"] = Field(
        default="runner", description="pg_custom: read the dump with the runner's or the host's pg_restore"
    )
    gpg_passphrase: str | None = Field(default=None, description="write ${ENV_NAME}, never a value")
    gpg_passphrase_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="where encryption is optional (runbook: 'если зашифрован'): the environment "
        "variable holding the passphrase, read only when the newest archive is a .gpg",
    )
    required_members: list[str] = Field(default=[], description="glob patterns every archive must contain")
    retention_days: float | None = Field(default=None, gt=0, le=3660)
    retention_slack_days: float = Field(default=1, ge=0, le=366)
    copy_on: str | None = Field(default=None, min_length=1, description="another host of `hosts` with a copy")
    copy_directory: HostPath | None = Field(
        default=None, description="the copies' folder there (default: same)"
    )
    timeout: float = Field(default=120, gt=0, le=3600)


def verify(check: BackupCheck, target: Target) -> None:
    if check.max_age_hours is not None:
        latest, now = newest(check, target)
        age = now - latest.mtime
        if age > check.max_age_hours * 3600:
            raise CheckFailed(
                f"newest backup younger than {check.max_age_hours:g}h",
                f"newest backup {age / 3600:.1f}h old > {check.max_age_hours:g}h ({latest.path})",
            )
    elif check.min_bytes is not None:
        latest, _ = newest(check, target)
        if latest.size < check.min_bytes:
            raise CheckFailed(
                f"newest backup at least {check.min_bytes} bytes",
                f"newest backup {latest.size} bytes < {check.min_bytes} ({latest.path})",
            )
    elif check.retention_days is not None:
        _retention(check, target)
    elif check.copy_on is not None:
        _copy_elsewhere(check, target)
    elif check.format == "pg_custom":
        _pg_dump_integrity(check, target)
    elif check.format == "sql_gz":
        _sql_dump_integrity(check, target)
    elif check.format == "sqlite":
        _sqlite_copy_integrity(check, target)
    else:
        _integrity(check, target)


def _retention(check: BackupCheck, target: Target) -> None:
    archives, now = listing(check, target)
    limit = (check.retention_days or 0) + check.retention_slack_days
    too_old = [archive for archive in archives if now - archive.mtime > limit * 86400]
    if too_old:
        oldest = too_old[-1]
        raise CheckFailed(
            f"no backup older than {check.retention_days:g} days (+{check.retention_slack_days:g}d slack)",
            f"{len(too_old)} backup(s) older than {limit:g} days; oldest {human_age(now - oldest.mtime)} "
            f"({oldest.path}): retention cleanup is not running",
            {"too old": "\n".join(a.path for a in too_old[:50])},
        )


def _pg_dump_integrity(check: BackupCheck, target: Target) -> None:
    latest, _ = newest(check, target)
    if check.pg_restore_on == "host":
        toc = pg_archive.read_on_host(target, latest.path, check.timeout)
    else:
        with target.open_stream(latest.path, check.timeout) as raw:
            toc = pg_archive.read_on_runner(raw, latest.path, check.timeout)
    if not any(" TABLE DATA " in entry for entry in toc):
        raise CheckFailed(
            f"{latest.path} holds table data",
            f"{latest.path} has no TABLE DATA entries ({len(toc)} entries)",
            {"pg_restore --list": "\n".join(toc[:200])},
        )


def _sql_dump_integrity(check: BackupCheck, target: Target) -> None:
    latest, _ = newest(check, target)
    with target.open_stream(latest.path, check.timeout) as raw:
        dump = sql_dump.read(raw, latest.path)
    problem = dump.problem()
    if problem:
        raise CheckFailed(
            f"{latest.path} is a whole plain pg_dump (header, CREATE TABLE or COPY, completion trailer)",
            f"{latest.path} {problem}",
            {"dump (start)": dump.head, "dump (end)": dump.tail},
        )


def _sqlite_copy_integrity(check: BackupCheck, target: Target) -> None:
    """A valid SQLite database (read-only, on the host) with the tables the service needs."""
    latest, _ = newest(check, target)
    sqlite.check_integrity(latest.path, target)
    if not check.tables:
        return
    present = sqlite.table_names(latest.path, target)
    missing = [table for table in check.tables if table not in present]
    if missing:
        raise CheckFailed(
            f"{latest.path} holds the tables {', '.join(check.tables)}",
            f"{latest.path} lacks table(s) {', '.join(missing)} ({len(present)} tables: "
            f"{', '.join(present[:20]) or 'none'})",
        )


def _copy_elsewhere(check: BackupCheck, target: Target) -> None:
    """The newest backup is also on `copy_on`: same name, size and sha256 (computed on each host)."""
    latest, _ = newest(check, target)
    assert check.copy_on is not None
    name = os.path.basename(latest.path)
    folder = check.copy_directory or check.directory
    copy = f"{folder.rstrip('/')}/{name}"
    peer = target.peer(check.copy_on)
    expected = f"the newest backup {name} also on {check.copy_on} ({folder}), same size and sha256"
    size = peer.run("stat -L -c %%s -- %s", copy)
    if size.rc != 0:
        said = size.stderr.strip()[:200]
        if "No such file" in said:
            raise CheckFailed(expected, f"{name} is not on {check.copy_on}: {copy} does not exist")
        raise CheckError(f"stat {copy} on {check.copy_on}: {said or f'exit {size.rc}'}")
    copied = size.stdout.strip()
    if copied != str(latest.size):
        raise CheckFailed(
            expected, f"{copy} on {check.copy_on} is {copied[:40]} bytes != {latest.size} on {target.name}"
        )
    here, there = _sha256(target, latest.path, check.timeout), _sha256(peer, copy, check.timeout)
    if here != there:
        raise CheckFailed(
            expected,
            f"sha256 of {copy} on {check.copy_on} {there[:12]}... != {here[:12]}... on {target.name}",
        )


def _sha256(target: Target, path: str, timeout: float) -> str:
    result = target.run("sha256sum -- %s", path, timeout=timeout)
    digest = result.stdout.split(" ", 1)[0].lstrip("\\")
    if result.rc != 0 or len(digest) != 64:
        raise CheckError(
            f"sha256sum {path} on {target.name}: {result.stderr.strip()[:200] or result.stdout[:200]}"
        )
    return digest


def _integrity(check: BackupCheck, target: Target) -> None:
    latest, _ = newest(check, target)
    encrypted = latest.path.endswith(".gpg")
    passphrase = check.gpg_passphrase
    if encrypted and not passphrase and check.gpg_passphrase_env:
        passphrase = os.environ.get(check.gpg_passphrase_env)
        if not passphrase:
            raise CheckError(
                f"{latest.path} is encrypted: set {check.gpg_passphrase_env} in the environment "
                "(its passphrase; secrets come from the environment)"
            )
        SECRETS.add(passphrase, check.gpg_passphrase_env)
    if encrypted and not passphrase:
        raise CheckError(f"{latest.path} is encrypted but the check has no gpg_passphrase")
    with target.open_stream(latest.path, check.timeout) as raw:
        if encrypted:
            assert passphrase is not None
            with _decrypted(raw, passphrase, latest.path) as plain:
                members = _list_tar(plain, latest.path)
        else:
            members = _list_tar(raw, latest.path)
    missing = [
        pattern
        for pattern in check.required_members
        if not any(
            fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(os.path.basename(name), pattern)
            for name in members
        )
    ]
    if missing:
        raise CheckFailed(
            f"newest backup contains {', '.join(check.required_members)}",
            f"{latest.path} lacks {', '.join(missing)} ({len(members)} entries)",
            {"entries": "\n".join(members[:200])},
        )


def _list_tar(stream: IO[bytes], path: str) -> list[str]:
    """Every member name, reading nested *.tar.gz members too (gzip CRC checked at each end)."""
    names: list[str] = []
    # tarfile's own "r|gz" stops at the tar end marker and never checks the gzip CRC,
    # so a flipped byte or a lost trailer passed; GzipFile checks both once drained.
    try:
        with gzip.GzipFile(fileobj=stream) as plain, tarfile.open(fileobj=plain, mode="r|") as archive:
            for member in archive:
                names.append(member.name)
                if member.isfile() and member.name.endswith((".tar.gz", ".tgz")):
                    inner = archive.extractfile(member)
                    assert inner is not None
                    with (
                        gzip.GzipFile(fileobj=inner) as inner_plain,
                        tarfile.open(fileobj=inner_plain, mode="r|") as nested,
                    ):
                        names.extend(f"{member.name}:{item.name}" for item in nested)
                        _drain(inner_plain)
            _drain(plain)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise CheckFailed(
            f"{path} is a valid tar.gz (gzip CRC and tar listing, as `tar tzf`)",
            f"{path} is corrupt: {type(exc).__name__}: {exc}",
        ) from None
    if not names:
        raise CheckFailed(f"{path} lists entries", f"{path} is an empty archive")
    return names


def _drain(stream: IO[bytes]) -> None:
    """Read to the end (tar's zero padding, the gzip trailer), so the CRC is checked."""
    while stream.read(CHUNK):
        pass


class _decrypted:
    """A local `gpg --decrypt` fed from the stream; its stdout is the plaintext."""

    def __init__(self, source: IO[bytes], passphrase: str, path: str) -> None:
        self.source = source
        self.passphrase = passphrase
        self.path = path

    def __enter__(self) -> IO[bytes]:
        self.home = tempfile.TemporaryDirectory(prefix="runbook-gpg-")
        read_end, write_end = os.pipe()
        os.write(write_end, self.passphrase.encode() + b"\n")
        os.close(write_end)
        self.process = subprocess.Popen(
            [
                "gpg",
                "--batch",
                "--quiet",
                "--no-tty",
                "--homedir",
                self.home.name,
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                str(read_end),
                "--decrypt",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(read_end,),
            env=child_environment(None),  # checks run ahead in threads: see child_environment
        )
        os.close(read_end)
        self.pump = threading.Thread(target=self._feed, daemon=True)
        self.pump.start()
        assert self.process.stdout is not None
        return self.process.stdout

    def _feed(self) -> None:
        assert self.process.stdin is not None
        try:
            while chunk := self.source.read(CHUNK):
                self.process.stdin.write(chunk)
        except (BrokenPipeError, OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def __exit__(self, *exc_info: object) -> None:
        # Drain what tar did not read, so gpg reaches the end and checks the MDC.
        assert self.process.stdout is not None
        while self.process.stdout.read(CHUNK):
            pass
        self.pump.join(timeout=5)
        # Not communicate(): the pump thread owns (and has closed) gpg's stdin.
        assert self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.wait(timeout=30)
        self.home.cleanup()
        # A wrong passphrase also makes tar fail on empty input: report gpg's reason first.
        if self.process.returncode != 0:
            said = stderr.decode(errors="replace").strip().splitlines()
            raise CheckFailed(
                f"{self.path} decrypts with the configured passphrase",
                f"gpg cannot decrypt {self.path}: {said[-1] if said else f'exit {self.process.returncode}'}",
            ) from None
