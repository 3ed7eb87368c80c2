"""Writing a run's files into a folder that may be reused: whole or not at all, never via a link.

A reports folder given with --junitxml=DIR/junit.xml can be one that another user (or an
earlier, hostile run) could write into: a symlink planted at DIR/evidence/.../stdout.txt or at
a predictable temporary name made the suite overwrite the link's target. Here a file is
written to a fresh temporary name (O_EXCL: a planted name is never opened) and renamed over
its place (rename replaces a link, never its target), and folders are made one level at a
time, refusing any that is a link.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class UnsafeFolder(OSError):
    """A folder on the way is a symlink or not a folder: nothing is written through it."""


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream whose content becomes `path` when the block ends without an error."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_file(path: Path, data: str | bytes) -> Path:
    """`path` written whole (a reader never sees half of it) and never through a planted link."""
    with replacing(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def make_folders(base: Path, *parts: str) -> Path:
    """base/part/part..., each made if missing and refused if it is a link or not a folder."""
    folder = base
    for part in parts:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        if folder.is_symlink() or not folder.is_dir():
            raise UnsafeFolder(
                f"{folder}: not a folder this run made (a link or a file): nothing written there"
            )
    return folder
