"""'Did you mean ...?' for a key that a description's model does not have.

pydantic says only "Extra inputs are not permitted"; a typo such as `max_age_hour`
or `backup:` is found faster when the message names the field it was meant to be.
"""

from __future__ import annotations

import difflib
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


def closest_field(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The field nearest to loc's last key among the fields of the model at loc's parent."""
    *parents, key = loc
    owner: Any = model
    for item in parents:
        owner = _child(owner, item)
    if not isinstance(key, str) or not (isinstance(owner, type) and issubclass(owner, BaseModel)):
        return None
    matches = difflib.get_close_matches(key, list(owner.model_fields), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _child(annotation: Any, item: int | str) -> Any:
    """The type found under `item` (a list index or a key) in a value of this type."""
    for option in _options(annotation):
        origin = get_origin(option)
        if isinstance(item, int) and origin is list:
            return get_args(option)[0]
        if isinstance(item, str) and isinstance(option, type) and issubclass(option, BaseModel):
            field = option.model_fields.get(item)
            return field.annotation if field else None
        if isinstance(item, str) and origin is dict:
            return get_args(option)[1]
    return None


def _options(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def field_elsewhere(kinds: dict[str, type[BaseModel]], loc: tuple[int | str, ...]) -> str:
    """'; path is a field of kind files (a path on the host ...)' for a field another kind has.

    `checks.logs[0].path` is refused as an extra input: the writer meant a check of the kind that
    reads what `path` says, so the hint names that kind (and what its field is, when it says).
    """
    if len(loc) != 4 or loc[0] != "checks" or not isinstance(loc[3], str):
        return ""
    kind, key = loc[1], loc[3]
    owners = [name for name, model in kinds.items() if name != kind and key in model.model_fields]
    if not owners:
        return ""
    shown = ", ".join(owners[:MAX_KINDS_NAMED]) + (", ..." if len(owners) > MAX_KINDS_NAMED else "")
    about = kinds[owners[0]].model_fields[key].description if len(owners) == 1 else None
    what = f" ({about})" if about else ""
    noun = "kind" if len(owners) == 1 else "kinds"
    return f"; kind {kind} has no {key!r}: {key} is a field of {noun} {shown}{what}"


MAX_KINDS_NAMED = 6
