"""Scraped counter values kept between runs, so that a run without Prometheus can compute rates.

One JSON file beside the reports (`<reports_dir>/.state/samples.json`), read and
rewritten under an exclusive `flock` of a lock file next to it and replaced
atomically (a temporary file renamed over it), so two runs at once (cron and an
on-call) neither lose each other's samples nor read half a file. Each source (a
check on one endpoint) keeps a short list of snapshots: those within the window
it is judged over, and the newest one older than that, its reference. A probe whose own
traffic counts against what it measures (a rate limit's attempts) keeps its last verdict
under `probes`, so a run a moment later repeats it instead of measuring its predecessor.
The suite's own slow requests are kept under `own_requests` by origin (runbook.host.own_traffic).

The folder is set once per run by the plugin (`STORE.folder`), from --reports-dir.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FOLDER = ".state"
FILE_NAME = "samples.json"
VERSION = 1
MAX_SNAPSHOTS = 500
MAX_TEXT = 2000  # of a remembered verdict
MAX_OWN_REQUESTS = 5000  # per origin, the newest
OWN_REQUESTS_KEPT = 86400.0  # seconds: longer than any window a rate is judged over


@dataclass(frozen=True)
class Snapshot:
    """The values of every matching series of one scrape, at the runner's clock."""

    time: float
    values: Mapping[str, float]


@dataclass(frozen=True)
class Probe:
    """A probe that leaves traces (a rate limit's attempts count for its window): when, and its verdict."""

    time: float
    passed: bool
    found: str
    expected: str


@dataclass(frozen=True)
class OwnRequest:
    """One of the suite's own requests to an origin: when it ended (wall clock) and how long it took.

    `sequential`: not one request but a command's client (a smoke script's curls, one at a time)
    busy for `seconds`: it may have sent as many slow requests as the threshold fits in them.
    """

    time: float
    seconds: float
    sequential: bool = False


class SampleStore:
    """Snapshots by source key, in one file; `folder` None until the plugin sets it."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder

    def record(self, source: str, snapshot: Snapshot, window: float) -> list[Snapshot]:
        """Add `snapshot` to the source's history; the history it is judged against (oldest first).

        Kept: the newest snapshot at least `window` old (the reference) and every later one.
        """
        with self._locked() as path:
            document = _read(path)
            sources = document.setdefault("sources", {})
            history = [old for old in _history(sources.get(source)) if old.time < snapshot.time]
            history.append(snapshot)
            history = _trim(history, snapshot.time - window)
            sources[source] = [[item.time, dict(item.values)] for item in history]
            _write(path, document)
        return history

    def last_probe(self, source: str) -> Probe | None:
        """The verdict the source's last probe left, if any (a probe that writes, e.g. a rate limit)."""
        with self._locked() as path:
            stored = _read(path).get("probes", {}).get(source)
        return _probe(stored)

    def record_probe(self, source: str, probe: Probe) -> None:
        kept = dataclasses.replace(probe, found=probe.found[:MAX_TEXT], expected=probe.expected[:MAX_TEXT])
        with self._locked() as path:
            document = _read(path)
            document.setdefault("probes", {})[source] = dataclasses.asdict(kept)
            _write(path, document)

    def record_own_requests(self, by_origin: Mapping[str, list[OwnRequest]]) -> None:
        """Add the suite's own slow requests; those older than OWN_REQUESTS_KEPT are dropped."""
        with self._locked() as path:
            document = _read(path)
            kept = document.setdefault("own_requests", {})
            for origin, requests in by_origin.items():
                merged = sorted([*_own_requests(kept.get(origin)), *requests], key=_ended)
                start = max(request.time for request in merged) - OWN_REQUESTS_KEPT
                fresh = [request for request in merged if request.time >= start][-MAX_OWN_REQUESTS:]
                kept[origin] = [
                    [request.time, request.seconds, *([1] if request.sequential else [])] for request in fresh
                ]
            _write(path, document)

    def own_requests(self, origin: str) -> list[OwnRequest]:
        with self._locked() as path:
            return _own_requests(_read(path).get("own_requests", {}).get(origin))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Path]:
        if self.folder is None:
            raise RuntimeError("the sample store has no folder (set by the runbook plugin at start)")
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{FILE_NAME}.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self.folder / FILE_NAME
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _history(stored: Any) -> list[Snapshot]:
    """A source's stored snapshots; anything malformed (an edited file) is dropped."""
    try:
        history = [
            Snapshot(float(moment), {str(key): float(value) for key, value in values.items()})
            for moment, values in stored or []
        ]
    except (TypeError, ValueError, AttributeError):
        return []
    # A NaN (an older suite stored them) would pass every later comparison: drop it.
    return [
        Snapshot(item.time, {key: value for key, value in item.values.items() if math.isfinite(value)})
        for item in history
        if math.isfinite(item.time)
    ]


def _probe(stored: Any) -> Probe | None:
    """A stored probe verdict; anything malformed (an edited file) is none."""
    if not isinstance(stored, dict):
        return None
    moment, passed = stored.get("time"), stored.get("passed")
    found, expected = stored.get("found"), stored.get("expected")
    if not isinstance(moment, int | float) or not math.isfinite(moment) or not isinstance(passed, bool):
        return None
    if not isinstance(found, str) or not isinstance(expected, str):
        return None
    return Probe(float(moment), passed, found[:MAX_TEXT], expected[:MAX_TEXT])


def _ended(request: OwnRequest) -> float:
    return request.time


def _own_requests(stored: Any) -> list[OwnRequest]:
    """An origin's stored requests; anything malformed (an edited file) is dropped."""
    if not isinstance(stored, list):
        return []
    found = []
    for item in stored[-MAX_OWN_REQUESTS:]:
        numbers = isinstance(item, list) and all(isinstance(value, int | float) for value in item)
        if numbers and (len(item) == 2 or (len(item) == 3 and item[2] in (0, 1))):
            moment, seconds = float(item[0]), float(item[1])
            if math.isfinite(moment) and math.isfinite(seconds):
                found.append(OwnRequest(moment, seconds, sequential=len(item) == 3 and item[2] == 1))
    return found


def _trim(history: list[Snapshot], start: float) -> list[Snapshot]:
    """From the newest snapshot taken at or before `start` on (all if none is that old)."""
    older = [index for index, item in enumerate(history) if item.time <= start]
    first = older[-1] if older else 0
    return history[first:][-MAX_SNAPSHOTS:]


def _read(path: Path) -> dict[str, Any]:
    """The stored document; a missing, unreadable or foreign file starts afresh (it is only a cache)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {"version": VERSION, "sources": {}}
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return {"version": VERSION, "sources": {}}
    if not isinstance(document.get("sources"), dict):  # valid JSON of another shape: a cache, start afresh
        return {"version": VERSION, "sources": {}}
    if not isinstance(document.get("probes", {}), dict):  # the probes alone are of another shape
        document["probes"] = {}
    if not isinstance(document.get("own_requests", {}), dict):
        document["own_requests"] = {}
    return document


def _write(path: Path, document: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


STORE = SampleStore()
