"""Limits a runbook keeps in its own environment variables (`ALERT_HTTP_5XX_PER_MIN`, `SMOKE_MAX_MS_*`).

A limit is written as a number or as `${NAME}`. The loader replaces `${NAME}` before the
model sees it (so the value arrives as text, "5"), or leaves it as written when the
variable is unset: the description still loads, and the run fails that one check naming
the variable, as for any missing secret. A check reads `resolved()`: always a number.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

from runbook.errors import CheckError

ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def _threshold(value: object) -> object:
    if isinstance(value, str) and not ENV_REFERENCE.match(value.strip()):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"not a number: {value!r} (write 5, 0.5 or ${{ALERT_...}})") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"not a finite number: {value!r}")
        return number
    return value


Threshold = Annotated[float | str, BeforeValidator(_threshold)]


def resolved(value: float | str) -> float:
    """The limit as a number; CheckError for a `${NAME}` the environment did not fill."""
    if isinstance(value, str):
        raise CheckError(f"the limit {value} was not resolved from the environment")
    return value
