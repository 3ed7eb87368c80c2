"""GET a lab service's JSON from this machine, as a client (the runbook's curl) sees it."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


def get_json(url: str, timeout: float = 3, *, verify_tls: bool = True) -> tuple[int, dict[str, Any]]:
    """(status, JSON object of the body, or {} when the body is not one). An error status is an
    answer too: its code and body are returned. No answer (refused, timed out) raises OSError.
    `verify_tls=False` for the lab's self-signed certificates."""
    context = None
    if not verify_tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return status, {}
    return status, document if isinstance(document, dict) else {}
