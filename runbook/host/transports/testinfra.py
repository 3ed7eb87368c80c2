"""Any other testinfra backend (kubectl://, ansible://, winrm://, lxc://, ...) through testinfra itself.

testinfra's `host.run` has no deadline of its own, so it runs in a worker thread
that the caller stops waiting for at the deadline. Streaming a file is not
offered: checks that need it say so.
"""

from __future__ import annotations

import contextlib
from typing import IO, Any

from runbook.errors import CheckError, CommandTimeout
from runbook.host.deadline import call_with_deadline
from runbook.host.processes import Capped, Raw, StreamEnd, TransportTimeout
from runbook.host.transports.base import Transport, TransportError


class TestinfraTransport(Transport):
    __test__ = False  # not a pytest test class

    def __init__(self, spec: str, *, connect_timeout: float) -> None:
        super().__init__(spec, connect_timeout=connect_timeout)
        self._host: Any = None

    @property
    def host(self) -> Any:
        if self._host is None:
            import testinfra

            try:
                self._host = testinfra.get_host(self.spec)
            except RuntimeError as exc:
                raise TransportError(str(exc)) from None
        return self._host

    def run(self, line: str, *, timeout: float) -> Raw:
        scheme = self.spec.split("://", 1)[0]
        try:
            result = call_with_deadline(lambda: self.host.run(line), timeout, f"{scheme}:// command")
        except CommandTimeout:
            raise TransportTimeout(f"no answer within {timeout:g}s") from None
        except TransportError:
            raise
        except Exception as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        stdout, stderr = Capped(), Capped()
        stdout.add(result.stdout_bytes)
        stderr.add(result.stderr_bytes)
        return Raw(result.rc, stdout.value(), stderr.value(), stdout.dropped + stderr.dropped)

    def stream(
        self, line: str, *, timeout: float
    ) -> contextlib.AbstractContextManager[tuple[IO[bytes], StreamEnd]]:
        scheme = self.spec.split("://", 1)[0]
        # Not TransportError: the host is reachable, this transport only lacks a way to stream.
        # (As a TransportError it marked the host unreachable and skipped its other checks.)
        raise CheckError(f"streaming a file is not supported over {scheme}:// yet")
