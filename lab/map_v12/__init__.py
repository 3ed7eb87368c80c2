"""Lab system `map-v12`: topology and stand-ins in system.py, faults in faults.py, the app in app/."""

from __future__ import annotations

from lab.map_v12.faults import FAULTS
from lab.map_v12.system import MapSystem

SYSTEM = MapSystem(FAULTS)
