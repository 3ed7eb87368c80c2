"""The lab's fault tables name only faults of their own system in `hides` and `replaces`.

bench/fault_pairs.py allows a fault's checks to stay green beside a fault that declares it hides
or replaces it; a name misspelt there would silently require nothing. No lab needed: the tables
are read, nothing is injected.
"""

from __future__ import annotations

import pytest

from lab import api as lab


@pytest.mark.parametrize("system", lab.systems())
def test_hides_and_replaces_name_faults_of_the_same_system(system: str) -> None:
    faults = lab.faults(system)
    names = {fault.name for fault in faults}
    for fault in faults:
        for relation in (fault.hides, fault.replaces):
            assert set(relation) <= names - {fault.name}, (fault.name, set(relation) - names)
            assert all(reason.strip() for reason in relation.values()), fault.name
