"""JUnit (xunit2): how severity and runbook section reach a CI UI.

xunit2 is the family CI tools validate against, and it has no per-testcase
<properties>. What every CI UI does show is a failure's `message` attribute, so
that is where severity and section go: "[P2] §4.1 Backups: newest backup 26.1h
old > 25h". `verdict` builds that message (`CheckRecord.ci_message()`) and puts it
on the report's `reprcrash`, which pytest's junitxml writes as the attribute;
the failure's text (expected / found / remedy / runbook) is the report's
longrepr. What concerns the whole run (systems, marker expression, failures
by severity) goes into testsuite-level properties, which xunit2 allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pytest
from _pytest.junitxml import xml_key

from runbook import keys
from runbook.secrets import SECRETS

if TYPE_CHECKING:
    from runbook.report.summary import RunRecorder

PROPERTY_PREFIX = "runbook."


def severity_counts_text(counts: Mapping[str, int]) -> str:
    """'P1=0 P2=1 P3=1 P4=0', the failures-by-severity property value."""
    return " ".join(f"{severity}={count}" for severity, count in counts.items())


class JunitProperties:
    """Testsuite-level properties: what the run checked, and its failures by severity."""

    def __init__(self, config: pytest.Config, recorder: RunRecorder) -> None:
        self.config = config
        self.recorder = recorder

    def _add(self, name: str, value: str) -> None:
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.add_global_property(PROPERTY_PREFIX + name, SECRETS.mask(value))

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._add("systems", ", ".join(self.recorder.system_names))
        self._add("markers", self.recorder.marker_expression or "(all)")

    # Before junitxml writes the file (a plain hook, not tryfirst), after every wrapper's first
    # half: the history comparison (runbook.report.comparison) is known by then.
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._add("failures_by_severity", severity_counts_text(self.recorder.failures_by_severity()))
        changes = self.config.stash.get(keys.CHANGES, None)
        if changes is not None:
            groups = ("new", "still_failing", "flapping", "resolved")
            self._add("history", " ".join(f"{name}={len(getattr(changes, name))}" for name in groups))
        waivers = self.config.stash.get(keys.WAIVERS, None)
        if waivers is not None:
            counts = (len(waivers.applied()), len(waivers.expired()), len(waivers.stale()))
            self._add("waivers", "applied={} expired={} stale={}".format(*counts))
