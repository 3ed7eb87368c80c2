"""How often a checklist run collects garbage.

A run allocates many short-lived objects (records, reports, models, SSH packets) and makes few
reference cycles. Python's default, a young-generation pass every 700 allocations, made about
250 passes in the five-system daily of the lab, 0.3-0.6 s of its 2.4 s of CPU (bench/RESULTS.md,
"Garbage collection"). A pass every 10,000 allocations made 110, 0.1-0.2 s, peak memory the same.
Set when the run has systems to check (runbook.plugin), so that other projects' pytest runs in the
same environment keep Python's pace.
"""

from __future__ import annotations

import gc

YOUNG_ALLOCATIONS = 10_000


def pace() -> None:
    """Collect the young generation every YOUNG_ALLOCATIONS allocations (never more often)."""
    young, middle, old = gc.get_threshold()
    if young:  # 0: collection switched off by whoever runs us; left as it is
        gc.set_threshold(max(young, YOUNG_ALLOCATIONS), middle, old)
