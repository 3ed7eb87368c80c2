"""Waiting on a connection whose descriptor is 1,024 or more (a run of hundreds of hosts)."""

from __future__ import annotations

import os
import resource
import socket

import pytest

from runbook.host import processes


class HighFd:
    """A socket end seen through a descriptor number above select()'s limit."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def test_readable_waits_on_descriptors_past_1024() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this machine allows {hard} open files: no descriptor 1100 to test with")
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    ours, theirs = socket.socketpair()
    high = os.dup2(ours.fileno(), 1100)
    try:
        end = HighFd(high)
        assert processes.readable([end], 0.05) == []
        theirs.sendall(b"x")
        assert processes.readable([end], 1.0) == [end]
    finally:
        os.close(high)
        ours.close()
        theirs.close()


def test_the_run_may_open_many_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        processes.allow_open_files()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(65_536, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
