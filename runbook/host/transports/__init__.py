"""Transports: how a command reaches a host. One small class per kind of connection.

Every transport does three things: run a shell line with a deadline (capped,
binary-safe output and the exit code), stream a file's bytes, and close. What
a command *means* (deadlines on the host, exit codes, orphans, sudo) is the
Target's business (runbook.host.target), the same over every transport. The table
below maps a host spec's scheme to its class, imported only when a host of
that kind is used (testinfra's registry of backends is the model); any other
testinfra scheme runs through testinfra itself.
"""

from __future__ import annotations

import importlib
import threading

from testinfra.backend import BACKENDS as TESTINFRA_BACKENDS

from runbook.host.processes import Raw, TransportTimeout
from runbook.host.transports.base import Transport, TransportError

__all__ = ["TRANSPORTS", "Raw", "Transport", "TransportError", "TransportTimeout", "open_transport"]

TRANSPORTS: dict[str, str] = {
    "local": "runbook.host.transports.process:LocalTransport",
    "ssh": "runbook.host.transports.process:SshTransport",
    "safe-ssh": "runbook.host.transports.process:SshTransport",
    "docker": "runbook.host.transports.process:DockerTransport",
    "podman": "runbook.host.transports.process:PodmanTransport",
    "paramiko": "runbook.host.transports.paramiko:ParamikoTransport",
    "ssh+persist": "runbook.host.transports.persistent:PersistentSshTransport",
}
FALLBACK = "runbook.host.transports.testinfra:TestinfraTransport"
# So testinfra.get_host("ssh+persist://...") in a custom check finds our backend (imported lazily).
TESTINFRA_BACKENDS.setdefault("ssh+persist", "runbook.host.transports.persistent.PersistentBackend")
# Hosts are first opened from the prefetch's threads. Under pytest's assertion rewriting (any run
# without --assert=plain, the selftests) importing a module parses it, and CPython 3.11 keeps the
# parser's depth count where threads share it: two parses at once can fail with "SystemError: AST
# constructor recursion depth mismatch" (python/cpython#106905, pytest#10763; seen in make unit).
# So the first import of a transport is made one thread at a time.
_IMPORTING = threading.Lock()


def open_transport(spec: str, *, connect_timeout: float) -> Transport:
    """The transport for a testinfra host spec (nothing connects before the first command)."""
    scheme = spec.split("://", 1)[0] if "://" in spec else "local"
    module_name, class_name = TRANSPORTS.get(scheme, FALLBACK).split(":")
    with _IMPORTING:
        transport_class = getattr(importlib.import_module(module_name), class_name)
    return transport_class(spec, connect_timeout=connect_timeout)  # type: ignore[no-any-return]
