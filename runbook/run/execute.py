"""Running one check in its test: its outcome from the prefetch, else verified now."""

from __future__ import annotations

from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run import prefetch
from runbook.run.verify import verify


def run_check(check: CheckBase, target: Target) -> None:
    """Raise CheckFailed / CheckError when the host is not as the runbook says."""
    # Already run with its host's other checks (runbook.run.prefetch)?
    ran, raised = prefetch.outcome_of(check, target.name)
    if raised is not None:
        raise raised
    if not ran:
        if check.measures_time:
            prefetch.settle()
        verify(check, target)
