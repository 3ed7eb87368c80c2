"""Fingerprints of a lab system, to prove that a checklist run changed nothing on it.

A fingerprint is a flat dict of facts (`file:<path>` -> hash, mtime, size, mode;
`container:<name>` -> id, state, restarts, start time; `sqlite:<db>:<table>` ->
hash of its rows; `redis:<container>:<key>` -> hash of its DUMP). Each system's
lab tests say what to fingerprint (its files, its dockerd, its databases), leave
out only what the system itself changes while it runs (a heartbeat table), and
compare before and after a full `daily` + `incident` run.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import docker


def files(root: Path, *, skip: Iterable[str] = ()) -> dict[str, str]:
    """Every regular file below root: content hash, mtime (ns), size, mode. `skip`: relative globs."""
    skipped = list(skip)
    facts: dict[str, str] = {}
    if root.is_file():
        candidates = [root]
        base = root.parent
    else:
        candidates = sorted(path for path in root.rglob("*") if path.is_file() and not path.is_symlink())
        base = root
    for path in candidates:
        relative = path.relative_to(base)
        if any(relative.match(pattern) for pattern in skipped):
            continue
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        facts[f"file:{path}"] = f"{digest} mtime={stat.st_mtime_ns} size={stat.st_size} mode={stat.st_mode:o}"
    return facts


def containers(docker_url: str) -> dict[str, str]:
    """Every container of a dockerd: id, state, restart count, start time, image."""
    client = docker.DockerClient(base_url=docker_url, timeout=30)
    try:
        facts = {}
        for container in client.containers.list(all=True):
            attrs = container.attrs
            state = attrs.get("State", {})
            facts[f"container:{container.name}"] = (
                f"{attrs['Id'][:12]} {state.get('Status')} restarts={attrs.get('RestartCount')} "
                f"started={state.get('StartedAt')} image={attrs.get('Image', '')[:19]}"
            )
        return facts
    finally:
        client.close()


def sqlite_tables(path: Path, *, skip_tables: Iterable[str] = ()) -> dict[str, str]:
    """A hash of every table's rows (opened read-only, immutable: the fingerprint writes nothing)."""
    skipped = set(skip_tables)
    connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        facts = {}
        for table in sorted(set(tables) - skipped):
            digest = hashlib.sha256()
            quoted = '"' + table.replace('"', '""') + '"'
            for row in connection.execute(f"SELECT * FROM {quoted} ORDER BY rowid"):
                digest.update(repr(row).encode())
            facts[f"sqlite:{path.name}:{table}"] = digest.hexdigest()[:16]
        return facts
    finally:
        connection.close()


def redis_keys(docker_url: str, container: str) -> dict[str, str]:
    """Every key of the Redis in a container, with a hash of its DUMP (read through redis-cli)."""
    client = docker.DockerClient(base_url=docker_url, timeout=30)
    try:
        redis = client.containers.get(container)
        listing = redis.exec_run(["redis-cli", "--scan"]).output.decode().split()
        facts = {}
        for key in sorted(listing):
            dump = redis.exec_run(["redis-cli", "--no-raw", "DUMP", key]).output
            facts[f"redis:{container}:{key}"] = hashlib.sha256(dump).hexdigest()[:16]
        facts[f"redis:{container}:(keys)"] = str(len(listing))
        return facts
    finally:
        client.close()


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed, one line each: 'changed file:/x: a -> b', 'appeared ...', 'vanished ...'."""
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append(f"vanished {key}: {before[key]}")
        elif key not in before:
            lines.append(f"appeared {key}: {after[key]}")
        elif before[key] != after[key]:
            lines.append(f"changed {key}: {before[key]} -> {after[key]}")
    return lines
