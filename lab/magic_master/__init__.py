"""Lab system `magic-master`: a real systemd host (system.py), its faults (faults.py), the app (app.py)."""

from __future__ import annotations

from lab.magic_master.faults import FAULTS
from lab.magic_master.system import MagicMasterSystem

SYSTEM = MagicMasterSystem(FAULTS)
