"""Whether the runner itself was too busy to time anything: its own timer's lateness.

A check that failed on time (no answer within 5 s, p95 over its limit, a command past its
deadline) blames the service; on a runner starved of CPU (a 2-core CI machine running
other jobs, a laptop swapping) the service may be fine and the runner late. A thread asks
to sleep SLICE seconds over and over and notes how late it woke: that lateness is what the
runner did to every timing it took meanwhile. `verify` asks how late it woke at worst while
a check ran; over OVERLOADED seconds, a timing failure becomes "runner overloaded" (still
not green: the checklist item could not be ticked) with what was measured kept in the text.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

SLICE = 0.1  # seconds the thread sleeps between looks
OVERLOADED = 1.0  # seconds of lateness: a 5 s timeout measured on such a runner says nothing
KEPT = 36_000  # looks: an hour


class LagMonitor:
    """A daemon thread sleeping SLICE at a time; `worst(since)` is its worst lateness since then."""

    def __init__(self) -> None:
        self._looks: deque[tuple[float, float]] = deque(maxlen=KEPT)  # (woke at, seconds late)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (once per process; cheap to call before every check)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._watch, daemon=True, name="runbook runner lag")
            self._thread.start()

    def _watch(self) -> None:
        while True:
            asked = time.monotonic()
            time.sleep(SLICE)
            woke = time.monotonic()
            self._looks.append((woke, max(0.0, woke - asked - SLICE)))

    def worst(self, since: float) -> float:
        """The latest the timer woke (seconds) among the looks that ended after `since` (monotonic),
        counting a look still under way as late as it already is."""
        looks = list(self._looks)
        latest = max((late for woke, late in looks if woke >= since), default=0.0)
        last_woke = looks[-1][0] if looks else since
        running_late = time.monotonic() - max(last_woke, since) - SLICE
        return max(latest, running_late)


MONITOR = LagMonitor()


def describe(late: float) -> str:
    """'its own 0.1 s timer woke up to 2.3 s late (load average 9.8 on 2 CPUs)'."""
    try:
        load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count() or 1} CPUs"
    except OSError:
        load = f"{os.cpu_count() or 1} CPUs"
    return f"its own {SLICE:g} s timer woke up to {late:.1f} s late ({load})"
