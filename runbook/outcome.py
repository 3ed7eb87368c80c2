"""How a check says it failed: expected, found, and the evidence behind it.

Checks raise `CheckFailed`; the plugin turns it into a short report (no
traceback) with the check's severity, runbook section and remedy added, so a
check's code only states facts.
"""

from __future__ import annotations

from collections.abc import Mapping


class CheckFailed(AssertionError):
    """The system is not as the runbook says it should be."""

    def __init__(
        self,
        expected: str,
        found: str,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{found} (expected: {expected})")
        self.expected = expected
        self.found = found
        self.evidence = dict(evidence or {})


class CheckError(Exception):
    """The check could not look: host unreachable, command timed out, missing secret.

    Reported as a failure too (a checklist item that could not be ticked is not
    green), with the reason instead of a traceback.
    """


class HostUnreachable(CheckError):
    pass


class CommandTimeout(CheckError):
    pass


def require(condition: bool, expected: str, found: str, evidence: Mapping[str, str] | None = None) -> None:
    """Raise CheckFailed unless `condition`; for custom checks as much as for ours."""
    if not condition:
        raise CheckFailed(expected, found, evidence)
