"""`--bundle`: the run folder as one .tar.gz to attach to the incident ticket, nothing secret inside.

Why: a ticket takes one attachment, and the on-call should not pick files by hand. The
bundle (`<run folder>/bundle.tar.gz`) holds report.html, junit.xml, summary.json,
incident.md, the failing checks' evidence as text files (evidence/<system>/<check>/<name>.txt)
and incident.json. Only those names are packed (never a symlink, never anything else that
happens to be in the folder), and every member passes through the secret mask again on its
way in, so a secret that reached a file by a path we did not foresee still stays out.

incident.json marks the bundle open and names the runs it refers to: this run and the runs
where its failures began (from the history). Retention (runbook.readers.retention) never deletes
a run an open bundle refers to; `python -m runbook incident close <run folder>` closes it.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runbook.readers.safe_files import make_folders, replacing, write_file
from runbook.record import CheckRecord
from runbook.secrets.scrub import scrub

NAME = "bundle.tar.gz"
MANIFEST = "incident.json"
FORMAT = "runbook-incident/1"
PACKED = ("report.html", "junit.xml", "summary.json", "incident.md", MANIFEST)
EVIDENCE = "evidence"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def write_evidence(folder: Path, records: Iterable[CheckRecord]) -> list[Path]:
    """The failing (and waived) checks' evidence as text files, already masked by the verdict."""
    written = []
    for record in records:
        if not (record.failed or record.outcome == "waived"):
            continue
        for name, text in record.evidence.items():
            if not text:
                continue
            parent = make_folders(folder, EVIDENCE, _safe(record.system), _safe(record.check_id))
            written.append(write_file(parent / f"{_safe(name)}.txt", scrub(text)))
    return written


def write_manifest(folder: Path, runs: Iterable[str], opened: str) -> Path:
    manifest = {
        "format": FORMAT,
        "open": True,
        "opened": opened,
        "closed": None,
        "bundle": NAME,
        "runs": sorted({folder.name, *runs}),
    }
    return _write_json(folder / MANIFEST, manifest)


def pack(folder: Path) -> Path:
    """`folder`/bundle.tar.gz, written under a temporary name and renamed into place."""
    target = folder / NAME
    with replacing(target) as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for path in _members(folder):
            data = scrub(path.read_text(encoding="utf-8", errors="replace")).encode("utf-8")
            info = tarfile.TarInfo(f"{folder.name}/{path.relative_to(folder).as_posix()}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            archive.addfile(info, io.BytesIO(data))
    return target


def _members(folder: Path) -> list[Path]:
    members = [folder / name for name in PACKED]
    evidence = folder / EVIDENCE
    if evidence.is_dir() and not evidence.is_symlink():
        members += sorted(evidence.rglob("*.txt"))
    return [path for path in members if path.is_file() and not _via_symlink(path, folder)]


def _via_symlink(path: Path, folder: Path) -> bool:
    """The file or a folder on its way is a symlink (it could point at anything on the runner)."""
    folders = [folder / parent for parent in path.relative_to(folder).parents if parent.parts]
    return path.is_symlink() or any(parent.is_symlink() for parent in folders)


def open_references(reports_dir: Path) -> set[str]:
    """The run folders that open bundles under `reports_dir` refer to."""
    referenced: set[str] = set()
    for manifest in reports_dir.glob(f"*/{MANIFEST}"):
        data = _read_json(manifest)
        if data.get("open") and isinstance(data.get("runs"), list):
            referenced.update(str(run) for run in data["runs"])
    return referenced


def is_open(folder: Path) -> bool:
    return bool(_read_json(folder / MANIFEST).get("open"))


def close(folder: Path, closed: str) -> bool:
    """Mark the bundle of `folder` closed; False when it has none or it was closed already."""
    manifest = folder / MANIFEST
    data = _read_json(manifest)
    if not data.get("open"):
        return False
    data.update(open=False, closed=closed)
    _write_json(manifest, data)
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    return write_file(path, json.dumps(data, indent=2) + "\n")


def _safe(name: str) -> str:
    return SAFE_NAME.sub("_", name).strip("._") or "_"
