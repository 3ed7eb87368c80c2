"""The network side of a lab host: a named network namespace reached from the machine by a veth.

A lab host is only ever reached through its /30 (see `lab.addresses`): no default route, no
forwarding, so nothing in the lab talks to the world and the world never sees the lab.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from lab.addresses import LAB_RANGE, HostLink
from lab.core import run, stop_pid, wait_until


def fence_lab_range() -> None:
    """An unreachable route for the whole lab range: probes of a stopped host fail at once."""
    run(["ip", "route", "replace", "unreachable", str(LAB_RANGE)])


def unfence_lab_range() -> None:
    run(["ip", "route", "del", "unreachable", str(LAB_RANGE)], check=False)


def link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", name]
    return run(argv, check=False).returncode == 0


def netns_path(netns: str) -> Path:
    return Path("/run/netns") / netns


def in_netns(pid: int, netns: str) -> bool:
    """Whether process `pid` lives in the named namespace (a restarted one is a new one)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == netns_path(netns).stat().st_ino
    except FileNotFoundError:
        return False


def ensure_netns(netns: str) -> None:
    if not netns_path(netns).exists():
        run(["ip", "netns", "add", netns])


def delete_netns(netns: str) -> None:
    """End what still runs in the namespace (gpg-agent, shims), then remove it."""
    if netns_path(netns).exists():
        for pid in run(["ip", "netns", "pids", netns], check=False).stdout.split():
            stop_pid(int(pid), timeout=5, what="leftover process in namespace")
        run(["ip", "netns", "del", netns])


@dataclass(frozen=True)
class VethLink:
    """A veth pair: `machine_if` on the machine, `host_if` inside the namespace `netns`.

    The namespace must exist (made by `ensure_netns`, or attached to a container's).
    """

    netns: str
    machine_if: str
    addresses: HostLink
    host_if: str = "eth0"

    @property
    def detail(self) -> str:
        link = self.addresses
        return f"{link.host}/{link.prefix} <-> {self.machine_if} {link.machine}"

    def ok(self) -> bool:
        return (
            netns_path(self.netns).exists()
            and link_exists(self.machine_if)
            and link_exists(self.host_if, self.netns)
        )

    def up(self) -> None:
        fence_lab_range()
        if not link_exists(self.host_if, self.netns):
            if link_exists(self.machine_if):  # orphan of a namespace that is gone
                run(["ip", "link", "del", self.machine_if])
            peer = f"{self.machine_if}p"
            run(["ip", "link", "add", self.machine_if, "type", "veth", "peer", "name", peer])
            run(["ip", "link", "set", peer, "netns", self.netns])
            run(["ip", "-n", self.netns, "link", "set", peer, "name", self.host_if])
        link = self.addresses
        run(["ip", "addr", "replace", f"{link.machine}/{link.prefix}", "dev", self.machine_if])
        run(["ip", "link", "set", self.machine_if, "up"])
        inside = ["ip", "-n", self.netns]
        run([*inside, "addr", "replace", f"{link.host}/{link.prefix}", "dev", self.host_if])
        run([*inside, "link", "set", self.host_if, "up"])
        run([*inside, "link", "set", "lo", "up"])

    def wait_gone(self) -> None:
        """Deleting a namespace takes its veth pair along, but asynchronously."""
        if link_exists(self.machine_if):
            run(["ip", "link", "del", self.machine_if], check=False)
        wait_until(lambda: not link_exists(self.machine_if), timeout=10, what=f"{self.machine_if} to go")


def wait_tcp(addr: str, port: int, *, timeout: float) -> None:
    """Wait until something accepts TCP connections on addr:port."""

    def probe() -> bool:
        with socket.create_connection((addr, port), 1):
            return True

    wait_until(probe, timeout=timeout, what=f"{addr}:{port}", interval=0.1)
