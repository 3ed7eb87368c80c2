"""Lab system `loyalty-api`: topology and stand-ins in system.py, faults in faults.py, the app in app/."""

from __future__ import annotations

from lab.loyalty_api.faults import FAULTS
from lab.loyalty_api.system import LoyaltySystem

SYSTEM = LoyaltySystem(FAULTS)
