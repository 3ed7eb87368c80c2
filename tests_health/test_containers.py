"""Containers: `docker ps`, restart policy, memory limit, crashes, restarts, memory use."""

from __future__ import annotations

import pytest

from runbook.checks import containers, instances
from runbook.hosts import Target
from runbook.schema import ContainerCheck, InstancesCheck


@pytest.mark.runbook_kind("containers")
def test_container(check: ContainerCheck, target: Target) -> None:
    containers.verify(check, target)


@pytest.mark.runbook_kind("instances")
def test_instances(check: InstancesCheck, target: Target) -> None:
    instances.verify(check, target)
