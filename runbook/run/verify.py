"""The one place a kind's `verify` is called, in a test's turn or ahead of it."""

from __future__ import annotations

import time

from runbook.describe import kinds
from runbook.describe.model import CheckBase
from runbook.errors import CheckFailed, CommandTimeout, RunnerOverloaded
from runbook.host.own_traffic import LEDGER
from runbook.host.target import Target
from runbook.run.runner_load import MONITOR, OVERLOADED, describe


def verify(check: CheckBase, target: Target) -> None:
    """Raise CheckFailed / CheckError when the host is not as the runbook says."""
    MONITOR.start()
    started = time.monotonic()
    try:
        kinds.verifier(check)(check, target)
    except (CheckFailed, CommandTimeout) as failure:
        timed = isinstance(failure, CommandTimeout) or bool(getattr(failure, "timing", False))
        late = MONITOR.worst(started) if timed else 0.0
        if late < OVERLOADED:
            raise
        measured = failure.found if isinstance(failure, CheckFailed) else str(failure)
        raise RunnerOverloaded(
            f"runner overloaded: while this check ran, {describe(late)}; the time it measured says "
            f"nothing about the service, run it again on a quiet runner. It measured: {measured}"
        ) from failure
    finally:
        LEDGER.flush()  # its slow requests, for the rate checks of this run and of runs beside it
