"""Addresses of lab hosts and container networks, all given out from the lab range.

Every address is a function of a system's slot (written beside it in `lab.registry.SYSTEMS`, never
reused) and a host's or network's slot within that system. So the
`systems/lab/` descriptions can name them, and they are the same on every machine and run.

- 198.18.0.0/20: a /24 per system, a /30 per host in it: `.4h+1` is the machine's end of the
  veth, `.4h+2` the host (the calendar server, system 0 host 0, is 198.18.0.2).
- from 198.18.16.0: a /22 per system, a /24 per container network with an explicit subnet
  (the calendar's network is 198.18.16.0/24).
- 198.18.128.0/17: a /21 per system, the `--default-address-pool` of its hosts' dockerd,
  for networks created without a subnet.
The last system slot is the kit's own selftests' (`SELFTEST_SYSTEM`).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from lab import registry

# RFC 2544 benchmarking range: nothing real lives there. The lab keeps an "unreachable" route
# for all of it, so a probe of a stopped lab host fails at once instead of leaving the machine.
LAB_RANGE = IPv4Network("198.18.0.0/15")
HOST_LINKS = IPv4Network("198.18.0.0/20")
CONTAINER_NETWORKS = IPv4Address("198.18.16.0")
DOCKER_POOLS = IPv4Network("198.18.128.0/17")

SYSTEMS_MAX = 16
HOSTS_PER_SYSTEM = 64  # /30s in a system's /24
NETWORKS_PER_SYSTEM = 4  # /24s in a system's /22
POOL_PREFIX = 21
# The last system slot (198.18.15.x) is kept for the kit's own selftests, never a system.
SELFTEST_SYSTEM = "lab-selftest"


@dataclass(frozen=True)
class HostLink:
    """The /30 between the machine and one lab host (a veth pair)."""

    machine: IPv4Address
    host: IPv4Address
    prefix: int = 30


@dataclass(frozen=True)
class Subnet:
    """A container network's subnet and its gateway (the bridge in the host's dockerd)."""

    subnet: IPv4Network
    gateway: IPv4Address


def system_slot(system: str) -> int:
    """The system's position in the registry: its share of every block below."""
    if system == SELFTEST_SYSTEM:
        return SYSTEMS_MAX - 1
    slot = registry.slot(system)
    if slot >= SYSTEMS_MAX - 1:
        raise ValueError(f"the lab range has room for {SYSTEMS_MAX - 1} systems; {system} has slot {slot}")
    return slot


def host_link(system: str, host_slot: int) -> HostLink:
    """Addresses of the `host_slot`-th host of `system` (0 for its first or only host)."""
    if not 0 <= host_slot < HOSTS_PER_SYSTEM:
        raise ValueError(f"host slot {host_slot} outside 0..{HOSTS_PER_SYSTEM - 1}")
    base = HOST_LINKS.network_address + 256 * system_slot(system) + 4 * host_slot
    return HostLink(machine=base + 1, host=base + 2)


def container_subnet(system: str, network_slot: int) -> Subnet:
    """The `network_slot`-th container network of `system`, a /24."""
    if not 0 <= network_slot < NETWORKS_PER_SYSTEM:
        raise ValueError(f"network slot {network_slot} outside 0..{NETWORKS_PER_SYSTEM - 1}")
    base = CONTAINER_NETWORKS + 256 * (NETWORKS_PER_SYSTEM * system_slot(system) + network_slot)
    return Subnet(subnet=IPv4Network(f"{base}/24"), gateway=base + 1)


def docker_pool(system: str) -> str:
    """dockerd's `--default-address-pool` for the hosts of `system`: /24s out of its /21."""
    pools = list(DOCKER_POOLS.subnets(new_prefix=POOL_PREFIX))
    return f"base={pools[system_slot(system)]},size=24"
