"""Conditions on values at paths of a JSON answer: `components.db == "ok"`, `total` present,
`latency_ms` within bounds, `messages` at most 500 items.

A path is dotted keys, with list indexes as numbers (`items.0.id`). Each failed
condition reads as the value found against the bound (`components.redis = "error" !=
"ok"`, `messages has 731 items > 500`), so a failure message needs no body to read.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from runbook.describe.model import Model, regex

MISSING = object()
SHOWN_CHARS = 80


class JsonCondition(Model):
    """One condition on the value at `path`; set one or more of the bounds."""

    path: str = Field(min_length=1, max_length=500, description="dotted keys, list indexes as numbers")
    exists: bool | None = None
    equals: str | int | float | bool | None = Field(
        default=None, description="the value, compared exactly (a set null means null)"
    )
    min: float | None = None
    max: float | None = None
    min_items: int | None = Field(default=None, ge=0)
    max_items: int | None = Field(default=None, ge=0)
    matches: str | None = Field(default=None, description="regex searched in the value's text")

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return None if value is None else regex(value)

    @model_validator(mode="after")
    def _some_condition(self) -> JsonCondition:
        bounds = ("exists", "equals", "min", "max", "min_items", "max_items", "matches")
        if not any(name in self.model_fields_set for name in bounds):
            raise ValueError(f"{self.path}: set one of {', '.join(bounds)}")
        return self

    def failure(self, document: Any) -> str | None:
        """None when the value at `path` meets every bound set, else what was found."""
        value = lookup(document, self.path)
        if value is MISSING:
            return None if self.exists is False else f"{self.path} absent"
        shown = f"{self.path} = {show(value)}"
        if self.exists is False:
            return f"{self.path} present ({shown})"
        if "equals" in self.model_fields_set and not same(value, self.equals):
            return f"{shown} != {show(self.equals)}"
        if self.min is not None or self.max is not None:
            if not is_number(value):
                return f"{shown} is not a number"
            if self.min is not None and value < self.min:
                return f"{shown} < {self.min:g}"
            if self.max is not None and value > self.max:
                return f"{shown} > {self.max:g}"
        if self.min_items is not None or self.max_items is not None:
            if not isinstance(value, list | dict):
                return f"{self.path} is {type(value).__name__}, not a list"
            count = len(value)
            if self.min_items is not None and count < self.min_items:
                return f"{self.path} has {count} items < {self.min_items}"
            if self.max_items is not None and count > self.max_items:
                return f"{self.path} has {count} items > {self.max_items}"
        if self.matches is not None:
            text = value if isinstance(value, str) else json.dumps(value)
            if not re.search(self.matches, text):
                return f"{shown} does not match {self.matches!r}"
        return None

    def expected(self) -> str:
        parts = []
        if self.exists is not None:
            parts.append("present" if self.exists else "absent")
        if "equals" in self.model_fields_set:
            parts.append(f"== {show(self.equals)}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.min_items is not None:
            parts.append(f"at least {self.min_items} items")
        if self.max_items is not None:
            parts.append(f"at most {self.max_items} items")
        if self.matches is not None:
            parts.append(f"matches {self.matches!r}")
        return f"{self.path} {' and '.join(parts)}"


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path, or MISSING."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def is_number(value: Any) -> bool:
    """A JSON number a bound can judge: NaN and Infinity (Python's json reads both) are not."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def same(value: Any, wanted: Any) -> bool:
    """Equal, with True != 1 (JSON tells them apart)."""
    return value == wanted and isinstance(value, bool) == isinstance(wanted, bool)


def show(value: Any) -> str:
    """A value as a message shows it: JSON, cut at 80 characters."""
    if value is MISSING:
        return "absent"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def shown_fields(document: Any, paths: list[str]) -> str:
    """'db=ok redis=error': the fields a description asks every message to show."""
    values = (lookup(document, path) for path in paths)
    return " ".join(
        f"{path}={value if isinstance(value, str) and len(value) <= SHOWN_CHARS else show(value)}"
        for path, value in zip(paths, values, strict=True)
    )
