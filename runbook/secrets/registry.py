"""Secrets: values that must never reach a report, a log or a JUnit file, in any encoding.

A value becomes a secret when a description reads it with ${NAME}, when an
environment variable's name says it is one (TOKEN, PASSWORD, PASSPHRASE, ...),
or when it is the password of a URL in the environment (GIT_URL=https://bot:...@).
Everything the suite writes passes through `SECRETS.mask()`, which masks each
secret with its derived forms (see `runbook.secrets.forms`) and, registered or
not, passwords in URLs and credentials in Authorization headers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import unquote

from runbook.secrets.forms import (
    base64_cores,
    basic_auth_forms,
    binary_forms,
    escaped_forms,
    looks_like_basic_credentials,
    url_forms,
)

MASK = "***"
SECRET_NAME = re.compile(
    r"(TOKEN|PASSWORD|PASSWD|PASSPHRASE|SECRET|API_?KEY|PRIVATE|CREDENTIAL|JWT|COOKIE)", re.I
)


NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def is_a_limit(name: str, value: str) -> bool:
    """A variable giving a number, NAME not named like a secret (`ALERT_HTTP_SLOW_PER_MIN=1000`,
    `SMOKE_MAX_MS_CODE=800`): a limit, not a secret. Masked, every 1000 in a report lost digits
    (a migration named 20240701000000 read 2024070***000)."""
    return bool(NUMBER.match(value)) and not SECRET_NAME.search(name)


# Shorter values would mask ordinary words and numbers all over a report.
MIN_SECRET_LENGTH = 4

# scheme://user:password@ -- the password group is masked.
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/?#@]*:(?P<secret>[^\s/?#@]+)@", re.I)
# `Authorization: Basic x`, `"authorization": "Bearer x"`, `(b'Authorization', b'x')`, ...
AUTHORIZATION_VALUE = re.compile(
    r"\b(?:proxy-)?authorization\b['\"]?\s*[:=,]\s*(?:b?['\"])?"
    r"(?:(?:basic|bearer|digest|token|negotiate|ntlm)\s+)?(?P<secret>[^\s'\",;)}\]>]+)",
    re.I,
)
BASIC_VALUE = re.compile(r"\bBasic\s+(?P<secret>[A-Za-z0-9+/]{4,}={0,2})")
BEARER_VALUE = re.compile(r"\bBearer\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)")
# A base64 blob, for widening a match of a secret's base64 core to the whole blob.
BASE64_CHAR = re.compile(r"[A-Za-z0-9+/_-]")

Trie = dict[str, "Trie"]
# Masked texts remembered: short ones (titles, sections, remedies, messages), a bounded number.
MEMO_TEXT = 2048
MEMO_ENTRIES = 50_000


class SecretRegistry:
    """Secret values and everything derived from them, masked with one compiled pattern."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._forms: set[str] = set()
        self._cores: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        # text -> (generation, masked): a record is masked at each of its three phases with the
        # same title, section, remedy...; an entry of an older generation (before a secret was
        # added) is never used.
        self._memo: dict[str, tuple[int, str]] = {}
        self._generation = 0

    def add(self, value: str, name: str = "") -> None:
        if len(value) < MIN_SECRET_LENGTH or value in self._values:
            return
        self._values[value] = name
        forms = escaped_forms(value) | url_forms(value) | binary_forms(value)
        self._forms |= {form for form in forms if len(form) >= MIN_SECRET_LENGTH}
        self._cores |= base64_cores(value)
        self._changed()
        self.add_url_credentials(value, name)

    def add_url_credentials(self, text: str, name: str = "") -> None:
        """Passwords of URLs in `text` become secrets, and so does their Basic auth header value.

        The loader's ${...} values reach `add()` without the user in front of them, and
        Basic auth encodes `user:password` as one string: this is where that string is known.
        """
        for match in URL_PASSWORD.finditer(text):
            password = match.group("secret")
            user = match.group(0).split("://", 1)[1].split(":", 1)[0]
            self.add(password, name)
            self.add(unquote(password), name)
            if len(password) >= MIN_SECRET_LENGTH:
                self._forms |= basic_auth_forms(user, password)
                self._changed()

    def add_from_environment(self, environ: Mapping[str, str] | None = None) -> None:
        for name, value in (os.environ if environ is None else environ).items():
            if SECRET_NAME.search(name):
                self.add(value, name)
            else:
                self.add_url_credentials(value, name)

    def names(self) -> Iterable[str]:
        return sorted({name for name in self._values.values() if name})

    def mask(self, text: str) -> str:
        if not text:
            return text
        generation = self._generation
        remembered = self._memo.get(text) if len(text) <= MEMO_TEXT else None
        if remembered is not None and remembered[0] == generation:
            return remembered[1]
        masked = self._mask(text)
        if len(text) <= MEMO_TEXT and len(self._memo) < MEMO_ENTRIES:
            self._memo[text] = (generation, masked)
        return masked

    def _mask(self, text: str) -> str:
        spans = sorted(self._spans(text))
        if not spans:
            return text
        pieces: list[str] = []
        position = 0
        for start, end in spans:
            if end <= position:
                continue
            if start >= position:
                pieces.append(text[position:start])
                pieces.append(MASK)
            position = end
        pieces.append(text[position:])
        return "".join(pieces)

    def _spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where secrets are: registered forms first, then credentials of any shape we know."""
        if self._forms:
            for match in self._compiled().finditer(text):
                if match.lastgroup == "core":
                    yield _widen_to_blob(text, *match.span())
                else:
                    yield match.span()
        # The substring tests skip a regex scan of texts that cannot match (most of them).
        if "://" in text:
            for match in URL_PASSWORD.finditer(text):
                yield match.span("secret")
        if "authorization" in text.lower():
            yield from _long_enough(AUTHORIZATION_VALUE.finditer(text))
        if "Bearer" in text:
            yield from _long_enough(BEARER_VALUE.finditer(text))
        if "Basic" in text:
            for match in BASIC_VALUE.finditer(text):
                if looks_like_basic_credentials(match.group("secret")):
                    yield match.span("secret")

    def _compiled(self) -> re.Pattern[str]:
        if self._pattern is None:
            literal = trie_pattern(self._forms)
            if self._cores:
                literal = f"(?P<core>{trie_pattern(self._cores)})|{literal}"
            self._pattern = re.compile(literal)
        return self._pattern

    def clear(self) -> None:
        self._values.clear()
        self._forms.clear()
        self._cores.clear()
        self._changed()

    def _changed(self) -> None:
        self._pattern = None
        self._generation += 1
        self._memo = {}


def _long_enough(matches: Iterator[re.Match[str]]) -> Iterator[tuple[int, int]]:
    for match in matches:
        if len(match.group("secret")) >= MIN_SECRET_LENGTH:
            yield match.span("secret")


def _widen_to_blob(text: str, start: int, end: int) -> tuple[int, int]:
    """A base64 core is masked with the blob around it: its edge characters carry bits of the secret."""
    while start > 0 and BASE64_CHAR.match(text, start - 1):
        start -= 1
    while end < len(text) and BASE64_CHAR.match(text, end):
        end += 1
    while end < len(text) and text[end] == "=":
        end += 1
    return start, end


def trie_pattern(words: Iterable[str]) -> str:
    """One regex for many literals, sharing prefixes; at each position the longest word wins.

    A plain alternation tries every word at every position of the text; a trie tries
    one branch per character, which keeps masking fast with hundreds of forms.
    """
    trie: Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node(trie)


def _trie_node(node: Trie) -> str:
    """The node's regex; a run of single-child nodes is one literal, so the recursion (and the
    regex's nesting) is as deep as the words' branch points, not as long as the longest word:
    a 1,000-character token (a JWT, a key) used to exceed Python's recursion limit."""
    branches = []
    for char, child in sorted(node.items()):
        if not char:
            continue
        literal = [char]
        while len(child) == 1 and "" not in child:
            ((char, child),) = child.items()
            literal.append(char)
        branches.append(re.escape("".join(literal)) + _trie_node(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


SECRETS = SecretRegistry()
