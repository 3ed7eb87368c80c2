"""runbook-lab: a local, faithful copy of the production systems the runbooks describe.

Each system can be brought up, broken with the failures its runbook describes, and healed,
so the suite's checks can be shown to pass on a healthy system and fail on a broken one.
Use `lab.api` (or `python -m lab`); `lab.calendar` is the ai-calendar-assistant system.
"""

from __future__ import annotations

from lab.core import Component, Fault, LabError, UsageError

__all__ = ["Component", "Fault", "LabError", "UsageError"]
