"""Backup archives of a lab host: listing, dating, faking history, gpg and tar.gz.

Runbooks check backups by name, age (mtime), size, retention and contents; the lab makes real
archives with the system's own backup script and dates copies of them back for history, and
backup faults place, hide or damage archives. Heal undoes that from the fault book.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.core import LabError, run


def age_hours(path: Path) -> float:
    return (time.time() - path.stat().st_mtime) / 3600


@dataclass(frozen=True)
class BackupDir:
    """A directory of nightly archives named `<YYYYmmdd_HHMMSS><suffix>`, on the machine."""

    path: Path
    suffix: str = ".tar.gz.gpg"

    def archives(self) -> list[Path]:
        """Archives, oldest first by mtime (runbooks pick the newest with `ls -t`)."""
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob("*.tar.gz*"), key=lambda path: path.stat().st_mtime)

    def place(self, data: bytes, when: dt.datetime) -> Path:
        """Put an archive in, named and dated like a nightly run at `when` (never overwriting)."""
        target = self.path / f"{when:%Y%m%d_%H%M%S}{self.suffix}"
        while target.exists():
            when += dt.timedelta(seconds=1)
            target = self.path / f"{when:%Y%m%d_%H%M%S}{self.suffix}"
        target.write_bytes(data)
        target.chmod(0o600)
        os.utime(target, (when.timestamp(), when.timestamp()))
        return target

    def after_newest(self) -> dt.datetime:
        """A time later than every archive, so an injected one sorts first with `ls -t`."""
        now = dt.datetime.now().replace(microsecond=0)
        archives = self.archives()
        if archives:
            latest = dt.datetime.fromtimestamp(archives[-1].stat().st_mtime).replace(microsecond=0)
            now = max(now, latest + dt.timedelta(seconds=1))
        return now

    def fill_history(self, *, nights: int, at: dt.time) -> None:
        """A copy of the newest archive for each of the last `nights` nights that has none."""
        archives = self.archives()
        if not archives:
            raise LabError(f"no archive in {self.path} to date back")
        newest = archives[-1]
        suffix = newest.name[newest.name.index(".tar.gz") :]
        have = {path.name[:8] for path in archives}
        today = dt.date.today()
        for back in range(1, nights + 1):
            night = dt.datetime.combine(today - dt.timedelta(days=back), at)
            if night.strftime("%Y%m%d") in have:
                continue
            copy = self.path / f"{night:%Y%m%d_%H%M%S}{suffix}"
            shutil.copyfile(newest, copy)
            copy.chmod(0o600)
            os.utime(copy, (night.timestamp(), night.timestamp()))

    def hide_younger_than(self, hours: float, stash: Path) -> None:
        """Move every archive younger than `hours` into `stash` (a run that did not happen)."""
        stash.mkdir(parents=True, exist_ok=True)
        for archive in self.archives():
            if age_hours(archive) < hours:
                shutil.move(str(archive), stash / archive.name)

    def restore(self, stash: Path, injected: Iterable[str]) -> None:
        """Undo backup faults: injected archives (by name) gone, stashed ones back."""
        for name in injected:
            (self.path / name).unlink(missing_ok=True)
        if not stash.is_dir():
            return
        for item in stash.iterdir():
            target = self.path / item.name
            if target.exists():
                item.unlink()
            else:
                shutil.move(str(item), target)


def targz(files: dict[str, bytes], *, top: str) -> bytes:
    """A tar.gz holding directory `top` with `files` (name -> content) in it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(top)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gpg(args: list[str], data: bytes, *, passphrase: str) -> bytes:
    """Symmetric gpg with the passphrase on fd 3 (never argv) and a throwaway GNUPGHOME."""
    with tempfile.TemporaryDirectory(prefix="rbs-gpg-") as home:
        os.chmod(home, 0o700)
        read_fd, write_fd = os.pipe()
        os.write(write_fd, passphrase.encode())
        os.close(write_fd)
        try:
            proc = subprocess.run(
                [
                    "gpg",
                    "--homedir",
                    home,
                    "--batch",
                    "--yes",
                    "--quiet",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase-fd",
                    str(read_fd),
                    *args,
                ],
                input=data,
                capture_output=True,
                pass_fds=(read_fd,),
                timeout=60,
            )
        finally:
            os.close(read_fd)
            run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)
    if proc.returncode != 0:
        raise LabError(f"gpg {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def encrypt(plain: bytes, *, passphrase: str) -> bytes:
    return gpg(["--symmetric", "--cipher-algo", "AES256", "--output", "-"], plain, passphrase=passphrase)


def decrypt(path: Path, *, passphrase: str) -> bytes:
    return gpg(["--decrypt"], path.read_bytes(), passphrase=passphrase)
