"""Listening sockets and exposure (runbook: "port 8000 listens only on 127.0.0.1",
"redis is not reachable from outside"): what `ss -Hltn` (`-Hlun` for udp) says on the host.

One aspect a check: `listens: true` (something listens on the port; with `address:`, a
connection to that address reaches it: 0.0.0.0 covers every IPv4 address), `only_on: [127.0.0.1,
::1]` (every listener on the port is bound to one of these; nothing listening passes, it is not
exposed either) or `not_listening: true`. With `from_runner: true` the runner also tries the
port on the host's address (TCP, a short deadline): a connection that opens is a failure, the
second proof that a port is not reachable from outside.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import CheckBase
from runbook.errors import CheckError, CheckFailed
from runbook.host import sockets
from runbook.host.target import Target


def _ip(value: str) -> str:
    try:
        return sockets.normal(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (127.0.0.1, ::1)") from None


class SocketCheck(CheckBase):
    """A port on the host: listening, only on some addresses, or not at all."""

    kind: ClassVar[str] = "sockets"
    aspects: ClassVar[tuple[str, ...]] = ("listens", "only_on", "not_listening")
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke", "incident")

    port: int = Field(gt=0, lt=65536)
    protocol: Literal["tcp", "udp"] = "tcp"
    listens: Literal[True] | None = None
    address: str | None = Field(default=None, description="with listens: the IP it must accept on")
    only_on: list[str] | None = Field(
        default=None, min_length=1, description="the local addresses allowed: [127.0.0.1, ::1]"
    )
    not_listening: Literal[True] | None = None
    from_runner: bool = Field(
        default=False,
        description="with only_on / not_listening: also try the port from the runner; a connection "
        "that opens fails the check",
    )
    runner_address: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="the host's name or address as the runner reaches it; default: the host spec's",
    )
    timeout: float = Field(default=2.0, gt=0, le=30, description="from_runner's connect deadline")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _ip(value)

    @field_validator("only_on")
    @classmethod
    def _allowed(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_ip(address) for address in value]

    @model_validator(mode="after")
    def _fits(self) -> SocketCheck:
        if self.address is not None and not self.listens:
            raise ValueError("address goes with listens: true (only_on lists the allowed addresses)")
        if (self.from_runner or self.runner_address) and self.listens:
            raise ValueError(
                "from_runner proves a port is not reachable: use it with only_on or not_listening"
            )
        if self.from_runner and self.protocol != "tcp":
            raise ValueError("from_runner tries a TCP connection: protocol tcp only")
        if self.runner_address and not self.from_runner:
            raise ValueError("runner_address goes with from_runner: true")
        return self


def verify(check: SocketCheck, target: Target) -> None:
    port = f"{check.protocol} port {check.port}"
    found = sockets.on_port(target, check.port, check.protocol)
    evidence = {f"listening on port {check.port} (ss)": "\n".join(map(str, found))} if found else {}
    listed = ", ".join(map(str, found))
    if check.listens:
        if not found:
            raise CheckFailed(f"{port} listens", f"nothing listens on {port} on {target.display}")
        if check.address and not any(listener.accepts_on(check.address) for listener in found):
            raise CheckFailed(
                f"{port} listens on {check.address}",
                f"{port} listens on {listed}, not on {check.address}",
                evidence,
            )
        return
    if check.not_listening and found:
        raise CheckFailed(f"nothing listens on {port}", f"{port} listens on {listed}", evidence)
    if check.only_on:
        allowed = set(check.only_on)
        exposed = [listener for listener in found if listener.address not in allowed]
        if exposed:
            raise CheckFailed(
                f"{port} listens only on {', '.join(check.only_on)}",
                f"{port} listens on {', '.join(map(str, exposed))}, not only on {', '.join(check.only_on)}",
                evidence,
            )
    if check.from_runner:
        _from_runner(check, target, port)


def _from_runner(check: SocketCheck, target: Target, port: str) -> None:
    address = check.runner_address or target.address
    if not address:
        raise CheckError(
            f"from_runner: {target.display} has no network address in its spec; set runner_address"
        )
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = address == "localhost"
    if loopback:
        raise CheckError(
            f"from_runner: {address} is the runner's own loopback, it proves nothing about outside; "
            "set runner_address to the host's outside address"
        )
    if sockets.connect(address, check.port, check.timeout) is None:
        raise CheckFailed(
            f"{port} not reachable from the runner",
            f"{port} accepts TCP connections from the runner at {address}:{check.port}",
        )
