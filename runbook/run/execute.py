"""Running one check: the registry finds the verify function of the check's kind."""

from __future__ import annotations

from runbook.describe import kinds
from runbook.describe.model import CheckBase
from runbook.host.target import Target
from runbook.run import prefetch


def run_check(check: CheckBase, target: Target) -> None:
    """Raise CheckFailed / CheckError when the host is not as the runbook says."""
    # Already run with its host's other checks (runbook.run.prefetch)?
    ran, raised = prefetch.outcome_of(check, target.name)
    if raised is not None:
        raise raised
    if not ran:
        if prefetch.measures_time(check):
            prefetch.settle()
        kinds.verifier(check)(check, target)
