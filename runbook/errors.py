"""How a check says it failed: expected, found, and the evidence behind it.

Checks raise `CheckFailed`; the plugin turns it into a short report (no
traceback) with the check's severity, runbook section and remedy added, so a
check's code only states facts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping


class CheckFailed(AssertionError):
    """The system is not as the runbook says it should be."""

    def __init__(
        self,
        expected: str,
        found: str,
        evidence: Mapping[str, str] | None = None,
        *,
        timing: bool = False,
        slow: bool = False,
    ) -> None:
        super().__init__()
        self.expected = expected
        self.reword(found)
        self.evidence = dict(evidence or {})
        # Failed on time (no answer within, slower than a limit): a late runner may be the cause.
        self.timing = timing or slow
        # One measurement over a limit (a response time, a smoke script's thresholds): a single busy
        # moment can make it, so `runbook.run.verify` looks once more before it calls the check red.
        self.slow = slow

    def reword(self, found: str) -> None:
        """Say `found` instead (a verdict that learned more, such as a second look's)."""
        self.found = found
        self.args = (f"{found} (expected: {self.expected})",)


class CheckError(Exception):
    """The check could not look: host unreachable, command timed out, missing secret.

    Reported as a failure too (a checklist item that could not be ticked is not
    green), with the reason instead of a traceback.
    """


class CheckPassed(Exception):
    """The check passed and has something to say beyond "ok" ("baseline recorded").

    Raised, so that it travels like a failure from wherever the check ran (runbook.run.prefetch
    runs checks in other threads); the verdict records a pass with `note` as its message.
    """

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


class HostUnreachable(CheckError):
    """The host did not answer. `noticed` (time.monotonic()) is when the suite decided so: a runner
    starved of CPU then misses its own connect and shell deadlines (runbook.run.verify)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.noticed = time.monotonic()


class CommandTimeout(CheckError):
    pass


class RunnerOverloaded(CheckError):
    """A check failed on time while the runner itself was too busy to time anything."""


def require(condition: bool, expected: str, found: str, evidence: Mapping[str, str] | None = None) -> None:
    """Raise CheckFailed unless `condition`; for custom checks as much as for ours."""
    if not condition:
        raise CheckFailed(expected, found, evidence)
