"""Stash keys: one per piece of state the plugin modules share (pytest's own style).

Kept apart from the modules that fill them, so no plugin module imports another
just to reach its state.
"""

from __future__ import annotations

import pytest

# config.stash: the loaded descriptions, the collector (targets, parametrization), report paths.
SYSTEMS = pytest.StashKey["list[LoadedSystem]"]()
COLLECTOR = pytest.StashKey["Collector"]()
RUN_PATHS = pytest.StashKey["RunPaths"]()
# config.stash: the readers' state (runbook.readers.waivers, .changes), read by every report writer.
WAIVERS = pytest.StashKey["WaiverBook"]()
CHANGES = pytest.StashKey["RunChanges"]()
# item.stash: what the test became (built once, updated per phase).
RECORD = pytest.StashKey["CheckRecord"]()
