"""The kinds: found by package name, looked up by name or trait, and their verify functions.

A kind is one module in `runbook/checks/`: a `CheckBase` subclass with a `kind`
(defining it registers the model in `model.KINDS`) and a module-level `verify(check, target)`.
`load()` imports every module of that package once, by name (testinfra's lazily
loaded modules): dropping a new file there is all it takes for descriptions to
accept the kind and for the group's test (tests_health/, tests_backup/,
tests_config/) to run it. The registry sits below the kinds; it names no kind, and
what core code must know about one it reads from the kind's traits (CheckBase).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from runbook.describe.model import KINDS, CheckBase, KindError

__all__ = ["KINDS", "KindError", "describable", "load", "reachability_for", "verifier"]

# The package whose modules are the kinds, imported by name when the registry is first read.
KINDS_PACKAGE = "runbook.checks"
_loaded = False


def load() -> dict[str, type[CheckBase]]:
    """Every kind, in the order of their module names (imported once)."""
    global _loaded
    if not _loaded:
        package = importlib.import_module(KINDS_PACKAGE)
        for module in sorted(info.name for info in pkgutil.iter_modules(package.__path__)):
            if not module.startswith("_"):
                importlib.import_module(f"{package.__name__}.{module}")
        _loaded = True
    return dict(sorted(KINDS.items()))


def describable() -> dict[str, type[CheckBase]]:
    """The kinds a description may list under `checks:`."""
    return {kind: model for kind, model in load().items() if model.describable}


def reachability_for(host_name: str, spec: str = "") -> CheckBase:
    """The suite's own check that `host_name` answers, from the kind whose trait says it is one."""
    found = [model for model in load().values() if model.reachability]
    if len(found) != 1:
        raise KindError(f"exactly one kind must have reachability = True, found {len(found)}")
    return found[0].for_host(host_name, spec)


def verifier(check: CheckBase) -> Callable[[Any, Any], None]:
    """The `verify` function of the module that defines the check's model."""
    module = importlib.import_module(type(check).__module__)
    verify = getattr(module, "verify", None)
    if verify is None:
        raise KindError(f"{module.__name__} defines kind {check.kind!r} but no verify(check, target)")
    return verify  # type: ignore[no-any-return]
