"""Lab system `ai-calendar-assistant`: topology and stand-ins in system.py, faults in faults.py."""

from __future__ import annotations

from lab.calendar.faults import FAULTS
from lab.calendar.system import CalendarSystem

SYSTEM = CalendarSystem(FAULTS)
