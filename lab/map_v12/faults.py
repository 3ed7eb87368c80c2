"""The failures runbook map-v12.md names, each injectable into the lab."""

from __future__ import annotations

from lab.core import Fault

FAULTS: list[Fault] = []
