"""What a secret looks like after the encodings it meets on its way to a report.

A password in a URL is percent-encoded, a header echoed in a JSON body is
JSON-escaped, a command line is shell-quoted (twice: the argument, then the
`sh -c` around it) and logged as Python bytes repr, an HTML error page escapes
it, Basic auth sends base64 of `user:secret`. Masking only the plain value
leaves all of these in reports and logs, so the registry masks these forms too.

Base64 depends on where in a blob the secret starts (its byte offset mod 3),
so for each offset the characters that depend on the secret alone (its
`base64_cores`) are masked, together with the blob around them.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus, unquote

# Nested shell quoting: the check's argument, the `sh -c` around the command, ssh's own.
SHELL_DEPTH = 3
# Percent-encoding leaves different characters alone in different tools (httpx: sub-delims).
URL_SAFE_SETS = ("", "/", "!$&'()*+,;=:", "!$&'()*+,;=:@/?", "-._~")
# Fewer base64 characters than this could match any blob by chance.
MIN_BASE64_CORE = 6


def _json(text: str) -> str:
    return json.dumps(text)[1:-1]


def _json_utf8(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _json_html_safe(text: str) -> str:
    """Go's encoding/json and friends escape <, > and & for embedding in HTML."""
    return _json(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def _html_text(text: str) -> str:
    return html.escape(text, quote=False)


def _html_numeric(text: str) -> str:
    """markupsafe / Jinja's escaping: &#34; and &#39; for the quotes."""
    return html.escape(text, quote=False).replace('"', "&#34;").replace("'", "&#39;")


def _xml_attribute(text: str) -> str:
    """ElementTree's attribute escaping (JUnit's message attribute)."""
    return html.escape(text, quote=False).replace('"', "&quot;").replace("\n", "&#10;")


def _python_str(text: str) -> str:
    """Inside repr(): the quote escaped (a string holding both kinds of quotes)."""
    return repr(text + "\"'")[1:-4]


def _python_str_plain(text: str) -> str:
    """Inside repr() of a string holding only the other kind of quote."""
    return _python_str(text).replace("\\'", "'")


def _python_bytes(text: str) -> str:
    """Inside the repr of bytes, as testinfra logs a command (`command=b'...'`)."""
    return repr(text.encode() + b"\"'")[2:-4]


def _python_bytes_plain(text: str) -> str:
    return _python_bytes(text).replace("\\'", "'")


def _shell_single(text: str) -> str:
    """Inside shlex.quote()'s single quotes."""
    return text.replace("'", "'\"'\"'")


def _shell_single_backslash(text: str) -> str:
    """Inside single quotes, the other common spelling of a quote: '\\''."""
    return text.replace("'", "'\\''")


def _shell_double(text: str) -> str:
    """Inside double quotes."""
    for char in ("\\", '"', "$", "`"):
        text = text.replace(char, "\\" + char)
    return text


def _shell_backslash(text: str) -> str:
    """Unquoted, every special character behind a backslash (bash's printf %q)."""
    return "".join(char if char.isalnum() or char in "_-./:,=@%+" else "\\" + char for char in text)


SHELL_ESCAPES: tuple[Callable[[str], str], ...] = (
    _shell_single,
    _shell_single_backslash,
    _shell_double,
    _shell_backslash,
)
TEXT_ESCAPES: tuple[Callable[[str], str], ...] = (
    _json,
    _json_utf8,
    _json_html_safe,
    _html,
    _html_text,
    _html_numeric,
    _xml_attribute,
    _python_str,
    _python_str_plain,
    _python_bytes,
    _python_bytes_plain,
)


def _apply(escapes: Iterable[Callable[[str], str]], forms: set[str], depth: int) -> set[str]:
    """`forms` plus every result of up to `depth` escapes applied one after another."""
    seen = set(forms)
    frontier = set(forms)
    for _ in range(depth):
        frontier = {escape(form) for form in frontier for escape in escapes} - seen
        seen |= frontier
    return seen


def escaped_forms(value: str) -> set[str]:
    """Shell-quoted (nested) and then written as text once; or escaped as text twice (JSON of HTML).

    One quoting style nests to SHELL_DEPTH; mixed styles to two levels, which keeps a secret
    holding every special character at about a thousand forms instead of tens of thousands.
    """
    shell = _apply(SHELL_ESCAPES, {value}, 2)
    for escape in SHELL_ESCAPES:
        shell |= _apply((escape,), {value}, SHELL_DEPTH)
    return _apply(TEXT_ESCAPES, shell, 1) | _apply(TEXT_ESCAPES, {value}, 2)


def url_forms(value: str) -> set[str]:
    """Percent-encoded as different tools do it (which characters stay, upper or lower hex)."""
    forms: set[str] = set()
    for safe in URL_SAFE_SETS:
        for encoded in (quote(value, safe=safe), quote_plus(value, safe=safe)):
            forms.add(encoded)
            forms.add(_lower_hex(encoded))
    return forms


def _lower_hex(encoded: str) -> str:
    parts = encoded.split("%")
    return parts[0] + "".join(f"%{part[:2].lower()}{part[2:]}" for part in parts[1:])


def binary_forms(value: str) -> set[str]:
    """Whole-value base64 (both alphabets, with or without padding) and hex."""
    data = value.encode()
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode()
    return {standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("="), data.hex(), data.hex().upper()}


def base64_cores(value: str) -> set[str]:
    """For each start offset mod 3: the base64 characters that depend on the value alone."""
    data = value.encode()
    cores: set[str] = set()
    for offset in range(3):
        padded = b"\0" * offset + data
        first = -(-8 * offset // 6)  # the first character with no bits of what comes before
        last = 8 * len(padded) // 6  # the first character with bits of what comes after
        for encoded in (base64.b64encode(padded).decode(), base64.urlsafe_b64encode(padded).decode()):
            core = encoded[first:last]
            if len(core) >= MIN_BASE64_CORE:
                cores.add(core)
    return cores


def basic_auth_forms(user: str, password: str) -> set[str]:
    """The `Authorization: Basic` value of `user:password`, as written in a URL or decoded."""
    forms: set[str] = set()
    for name in {user, unquote(user)}:
        for secret in {password, unquote(password)}:
            forms |= binary_forms(f"{name}:{secret}")
    return forms


def looks_like_basic_credentials(candidate: str) -> bool:
    """Base64 that decodes to `something:something`, the shape of Basic auth."""
    try:
        decoded = base64.b64decode(candidate + "=" * (-len(candidate) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded
