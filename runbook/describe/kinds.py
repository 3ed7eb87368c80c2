"""The registry of check kinds, filled where each kind is defined.

A kind is one module in `runbook/checks/`: a `CheckBase` subclass with a `kind`
(defining it calls `register`) and a module-level `verify(check, target)`.
`load()` imports every module of that package once, goss-style: dropping a new
file there is all it takes for descriptions to accept the kind and for the
group's test (tests_health/, tests_backup/, tests_config/) to run it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runbook.describe.model import CheckBase

KINDS: dict[str, type[CheckBase]] = {}
_loaded = False


class KindError(Exception):
    """Two modules claim one kind, or a kind has no verify: a programming error, said at import."""


def register(model: type[CheckBase]) -> None:
    """Called by CheckBase.__pydantic_init_subclass__ for every model with a `kind`."""
    from runbook.describe.model import GROUPS

    known = KINDS.get(model.kind)
    if known is not None and known.__qualname__ != model.__qualname__:
        raise KindError(f"kind {model.kind!r} defined twice: {known.__module__} and {model.__module__}")
    if model.group not in GROUPS:
        raise KindError(f"kind {model.kind!r}: group {model.group!r} is not one of {GROUPS}")
    KINDS[model.kind] = model


def load() -> dict[str, type[CheckBase]]:
    """Every kind, in the order of their module names (imported once)."""
    global _loaded
    if not _loaded:
        import runbook.checks as package

        for module in sorted(info.name for info in pkgutil.iter_modules(package.__path__)):
            if not module.startswith("_"):
                importlib.import_module(f"{package.__name__}.{module}")
        _loaded = True
    return dict(sorted(KINDS.items()))


def describable() -> dict[str, type[CheckBase]]:
    """The kinds a description may list under `checks:`."""
    return {kind: model for kind, model in load().items() if model.describable}


def verifier(check: CheckBase) -> Callable[[Any, Any], None]:
    """The `verify` function of the module that defines the check's model."""
    module = importlib.import_module(type(check).__module__)
    verify = getattr(module, "verify", None)
    if verify is None:
        raise KindError(f"{module.__name__} defines kind {check.kind!r} but no verify(check, target)")
    return verify  # type: ignore[no-any-return]
