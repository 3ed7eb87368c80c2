"""Running one check: the registry finds the verify function of the check's kind."""

from __future__ import annotations

from runbook import ahead, kinds
from runbook.hosts import Target
from runbook.model import CheckBase


def run_check(check: CheckBase, target: Target) -> None:
    """Raise CheckFailed / CheckError when the host is not as the runbook says."""
    # Already run with its host's other checks (runbook.ahead)?
    ran, raised = ahead.outcome_of(check, target.name)
    if raised is not None:
        raise raised
    if not ran:
        if ahead.measures_time(check):
            ahead.settle()
        kinds.verifier(check)(check, target)
