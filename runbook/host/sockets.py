"""Listening sockets on the host (`ss -Hltn`, `ss -Hlun`): who may connect to a port.

ss prints each listener's local address: `127.0.0.1:8000`, `[::1]:6379`, `0.0.0.0:22`
(every IPv4 address), `[::]:80` or `*:80` (every address, IPv4 too unless the socket is
IPv6-only), `127.0.0.53%lo:53` (bound to an interface). Read fresh at every call: a port
that opens while --wait-ready retries must be seen.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from runbook.errors import CheckError
from runbook.host.target import Target

ANY_IPV4 = "0.0.0.0"
ANY = {"*", "::", ANY_IPV4}


@dataclass(frozen=True)
class Listener:
    protocol: str  # tcp or udp
    address: str  # as ss prints it, without brackets, zone or interface: 127.0.0.1, ::, *
    port: int
    interface: str = ""

    def __str__(self) -> str:
        where = f"[{self.address}]" if ":" in self.address else self.address
        on = f" (interface {self.interface})" if self.interface else ""
        return f"{where}:{self.port}{on}{_meaning(self.address)}"

    def accepts_on(self, address: str) -> bool:
        """Whether a connection to `address` (an IP on the host) reaches this listener."""
        if self.address in {"*", "::"}:
            return True
        if self.address == ANY_IPV4:
            return ipaddress.ip_address(address).version == 4
        return same_address(self.address, address)

    @property
    def loopback_only(self) -> bool:
        return self.address not in ANY and ipaddress.ip_address(self.address).is_loopback


def _meaning(address: str) -> str:
    if address == ANY_IPV4:
        return " (every IPv4 address)"
    if address in {"*", "::"}:
        return " (every address)"
    return ""


def normal(address: str) -> str:
    """An IP address in one spelling: ::ffff:127.0.0.1 is 127.0.0.1, 0:0::1 is ::1."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def same_address(one: str, other: str) -> bool:
    try:
        return normal(one) == normal(other)
    except ValueError:
        return one == other


def parse(text: str, protocol: str) -> list[Listener]:
    """ss -H output, one listener a line (the local address is the fourth column)."""
    found = []
    for line in text.splitlines():
        columns = line.split()
        if len(columns) < 5:
            continue
        address, _, port = columns[3].rpartition(":")
        if not port.isdigit() or not address:
            continue
        address, _, interface = address.partition("%")
        address = address.strip("[]")
        if address not in ANY:
            try:
                address = normal(address)
            except ValueError:
                continue
        found.append(Listener(protocol, address, int(port), interface))
    return found


def listening(target: Target, protocol: str = "tcp") -> list[Listener]:
    """Every socket listening on the host for `protocol` (tcp or udp)."""
    flags = {"tcp": "-Hltn", "udp": "-Hlun"}[protocol]
    result = target.run(f"ss {flags}")
    if result.rc != 0:
        said = result.stderr.strip()[:300] or f"exit {result.rc}"
        if result.rc == 127:
            said = "ss is not installed on the host (Debian: iproute2)"
        raise CheckError(f"ss {flags} on {target.display}: {said}")
    return parse(result.stdout, protocol)


def on_port(target: Target, port: int, protocol: str = "tcp") -> list[Listener]:
    return [listener for listener in listening(target, protocol) if listener.port == port]


def connect(address: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection from the runner to address:port opens, else why not."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except OSError as exc:
        return str(exc) or type(exc).__name__
    return None
