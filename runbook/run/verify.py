"""The one place a kind's `verify` is called, in a test's turn or ahead of it.

Two rules about time live here, for every kind: a single measurement over its limit is
looked at once more before it is red (a busy moment is not the runbook's outage; slow twice
is), and a failure on time while the runner itself was starved is the runner's, not the
service's.
"""

from __future__ import annotations

import time

from runbook.describe import kinds
from runbook.describe.model import CheckBase
from runbook.errors import CheckFailed, CheckPassed, CommandTimeout, HostUnreachable, RunnerOverloaded
from runbook.host.own_traffic import LEDGER
from runbook.host.target import Target
from runbook.run.runner_load import MONITOR, OVERLOADED, describe

SECOND_LOOK_PAUSE = 1.0  # seconds between a slow first look and the second
HOST_DEADLINES = 30.0  # seconds before a host was found down that a late runner may explain


def verify(check: CheckBase, target: Target) -> None:
    """Raise CheckFailed / CheckError when the host is not as the runbook says."""
    MONITOR.start()
    started = time.monotonic()
    try:
        _look_twice_if_slow(check, target)
    except (CheckFailed, CommandTimeout, HostUnreachable) as failure:
        timed = not isinstance(failure, CheckFailed) or failure.timing
        # A host found down (now, or by a check before this one) while the runner was starved: its
        # connect and shell deadlines ran out on the runner's side (seen with the runner stopped
        # 15 s mid-run: five hosts "unreachable", each of them fine).
        since = (
            min(started, failure.noticed - HOST_DEADLINES)
            if isinstance(failure, HostUnreachable)
            else started
        )
        late = MONITOR.worst(since) if timed else 0.0
        if late < OVERLOADED:
            raise
        measured = failure.found if isinstance(failure, CheckFailed) else str(failure)
        raise RunnerOverloaded(
            f"runner overloaded: while this check ran, {describe(late)}; the time it measured says "
            f"nothing about the service, run it again on a quiet runner. It measured: {measured}"
        ) from failure
    finally:
        LEDGER.flush()  # its slow requests, for the rate checks of this run and of runs beside it


def _look_twice_if_slow(check: CheckBase, target: Target) -> None:
    """Run the kind; a `slow` failure is looked at again after a pause and stands only if it repeats."""
    verifier = kinds.verifier(check)
    try:
        verifier(check, target)
        return
    except CheckFailed as first:
        if not first.slow:
            raise
        first_found = first.found
    time.sleep(SECOND_LOOK_PAUSE)
    try:
        verifier(check, target)
    except CheckFailed as second:
        second.reword(f"{second.found} (a look {SECOND_LOOK_PAUSE:g} s earlier: {first_found})")
        raise
    raise CheckPassed(
        f"green on a second look {SECOND_LOOK_PAUSE:g} s later; the first measured: {first_found}"
    )
