"""Where a lab host lives: its addresses, its directories on the machine, its namespace.

Shared by every kind of lab host (`Host`, `SystemdHost`), so they are placed, named and
purged the same way.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from lab import addresses
from lab.core import LabError, lab_dir, run_dir
from lab.dockerd import Dockerd, mounts_below
from lab.network import VethLink
from lab.ssh import ssh


@dataclass(frozen=True)
class Placement:
    """A lab host's place: `slot` in its system gives its addresses, `name` its directories.

    `name` defaults to the system's name, right for a system's first host (the calendar's
    disk is /var/lib/runbook-lab/ai-calendar-assistant/disk).
    """

    system: str
    netns: str
    machine_if: str
    slot: int = 0
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.system

    @property
    def link(self) -> VethLink:
        return VethLink(
            netns=self.netns,
            machine_if=self.machine_if,
            addresses=addresses.host_link(self.system, self.slot),
        )

    @property
    def addr(self) -> str:
        """The host's address, as the suite's host spec names it."""
        return str(self.link.addresses.host)

    @property
    def hostdir(self) -> Path:
        return lab_dir() / self.label

    @property
    def rundir(self) -> Path:
        return run_dir() / self.label

    def dockerd_in(self, netns: str) -> Dockerd:
        """A dockerd of this host in namespace `netns`, its state in the host's dirs."""
        return Dockerd(
            label=f"{self.label} ({netns})",
            netns=netns,
            statedir=self.hostdir,
            rundir=self.rundir,
            address_pool=addresses.docker_pool(self.system),
        )

    def ssh(self, command: str, *, check: bool = True, timeout: float = 120) -> str:
        """Run a command on the host as an operator would: ssh root@<addr> '<command>'."""
        return ssh(self.addr, command, check=check, timeout=timeout)

    def purge(self) -> None:
        """Remove the host's whole state; refuses while anything is still mounted in it."""
        busy = mounts_below(self.hostdir)
        if busy:
            raise LabError(f"cannot purge {self.hostdir}: still mounted: {', '.join(busy)}")
        shutil.rmtree(self.hostdir, ignore_errors=True)
        shutil.rmtree(self.rundir, ignore_errors=True)
