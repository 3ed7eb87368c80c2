"""A `${VAR}` inside a shell command stays data: its value is escaped for the quotes around it.

`commands: run:` is the description's own shell text, and a secret goes into it as
`KEY='${API_KEY}'`. Pasted as it is, a value holding a quote ended those quotes and the rest of
it ran as code (`x'; rm -rf ...; '`), and an ordinary password with a `'` broke the command. The
value is escaped for where it stands (inside '...', inside "...", or bare), so the command gets
exactly the environment's text, whatever it holds.
"""

from __future__ import annotations

import re
import shlex
from typing import Literal

Quoting = Literal["single", "double", "bare"]

# Fields whose text a shell reads: the commands kind's `run`.
SHELL_FIELD = re.compile(r"(^|\.)checks\.commands\[\d+\]\.run$")


def is_shell_field(where: str) -> bool:
    return SHELL_FIELD.search(where) is not None


def quoting_at(text: str, position: int) -> Quoting:
    """The quotes a POSIX shell is inside at `position` of `text` (backslashes honoured)."""
    state: Quoting = "bare"
    index = 0
    while index < position:
        char = text[index]
        if state == "single":
            if char == "'":
                state = "bare"
        elif state == "double":
            if char == "\\":
                index += 1
            elif char == '"':
                state = "bare"
        elif char == "\\":
            index += 1
        elif char == "'":
            state = "single"
        elif char == '"':
            state = "double"
        index += 1
    return state


def escaped(value: str, quoting: Quoting) -> str:
    """`value` written so that the shell reads it back as exactly `value` where it stands."""
    if quoting == "single":
        return value.replace("'", "'\\''")
    if quoting == "double":
        return re.sub(r'([\\"$`])', r"\\\1", value)
    return shlex.quote(value)
