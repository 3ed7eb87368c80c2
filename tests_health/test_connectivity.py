"""Dependencies answer: `redis-cli ping`, the bot reaching Redis and Radicale by name."""

from __future__ import annotations

import pytest

from runbook.checks import commands, tcp
from runbook.hosts import Target
from runbook.schema import CommandCheck, TcpCheck


@pytest.mark.runbook_kind("commands")
def test_command(check: CommandCheck, target: Target) -> None:
    commands.verify(check, target)


@pytest.mark.runbook_kind("tcp")
def test_tcp(check: TcpCheck, target: Target) -> None:
    tcp.verify(check, target)
