"""hexenvpn-xray: the VPN master with three replicas (see system.py)."""

from lab.vpn.faults import FAULTS
from lab.vpn.system import VpnSystem

SYSTEM = VpnSystem(FAULTS)
