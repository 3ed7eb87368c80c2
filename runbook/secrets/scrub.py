"""One text scrubbed of secrets before it leaves the run: evidence files, the environment table.

Registered secrets and URL passwords (SECRETS.mask), and a token standing alone as the user of
an http(s) URL (`https://<token>@host`, a clone URL's usual shape).
"""

from __future__ import annotations

import re

from runbook.secrets.registry import MASK, SECRETS

# https://<token>@host: userinfo without a password, in a URL where users are rare and tokens common.
HTTP_USER_ONLY = re.compile(r"\b(?P<scheme>https?://)(?P<user>[^\s:/?#@]+)@", re.I)


def scrub(text: str) -> str:
    """Registered secrets, URL passwords and token-like URL users out of one value."""
    masked = SECRETS.mask(text)
    return HTTP_USER_ONLY.sub(lambda match: f"{match['scheme']}{MASK}@", masked)
