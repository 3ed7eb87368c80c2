"""A release's folder laid on a lab host (`copy_tree`), and its digest (`tree_digest`).

Containers that bind-mount code carry the digest of that code (`Spec.content`), so editing the
code in this repository redeploys them at the next `up` or `heal`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lab.core import write_file


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts]


def tree_digest(root: Path) -> str:
    """Digest of every file under root (names and bytes), __pycache__ left out."""
    digest = hashlib.sha256()
    for path in sorted(_files(root)):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def copy_tree(source: Path, target: Path) -> None:
    """Lay `source` at `target` in place, removing files the source does not have (a deploy of
    the release); the folder itself is never replaced, so containers' bind mounts stay valid."""
    wanted = {path.relative_to(source) for path in _files(source)}
    for relative in wanted:
        write_file(target / relative, (source / relative).read_bytes(), 0o644)
    if target.exists():
        for path in _files(target):
            if path.relative_to(target) not in wanted:
                path.unlink()
