"""The HTML report's environment table (pytest-metadata), scrubbed of credentials.

pytest-metadata copies CI variables into the report verbatim, and CI variables
carry credentials: Jenkins' GIT_URL=https://ci-bot:<token>@..., a GitHub-style
token as the user of a clone URL. Entries whose names look like secrets are
dropped; every value is masked (registered secrets, URL passwords), a token
standing alone as the user of an http(s) URL is masked too. The page escapes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook.secrets import SECRET_NAME
from runbook.secrets.scrub import scrub


def clean_metadata(metadata: dict[str, Any]) -> None:
    """Drop secret-looking entries and scrub every value (nested ones too), in place."""
    for key in list(metadata):
        if SECRET_NAME.search(str(key)):
            del metadata[key]
        else:
            metadata[key] = _clean_value(metadata[key])


def _clean_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            scrub(str(key)): _clean_value(item)
            for key, item in value.items()
            if not SECRET_NAME.search(str(key))
        }
    if isinstance(value, list | tuple):
        return [_clean_value(item) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value
