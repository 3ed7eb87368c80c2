"""The one place a kind's `verify` is called, in a test's turn or ahead of it."""

from __future__ import annotations

from runbook.describe import kinds
from runbook.describe.model import CheckBase
from runbook.host.own_traffic import LEDGER
from runbook.host.target import Target


def verify(check: CheckBase, target: Target) -> None:
    """Raise CheckFailed / CheckError when the host is not as the runbook says."""
    try:
        kinds.verifier(check)(check, target)
    finally:
        LEDGER.flush()  # its slow requests, for the rate checks of this run and of runs beside it
