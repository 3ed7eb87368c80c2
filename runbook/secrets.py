"""Secrets: values that must never reach a report, a log or a JUnit file.

A value becomes a secret when a description reads it with ${NAME}, or when an
environment variable's name says it is one (TOKEN, PASSWORD, PASSPHRASE, ...).
Everything the suite writes passes through `SECRETS.mask()`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MASK = "***"
SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|PASSWD|PASSPHRASE|SECRET|API_?KEY|PRIVATE|CREDENTIAL)", re.I)
# Shorter values would mask ordinary words and numbers all over a report.
MIN_SECRET_LENGTH = 4


class SecretRegistry:
    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str, name: str = "") -> None:
        if len(value) >= MIN_SECRET_LENGTH and value not in self._values:
            self._values[value] = name
            self._pattern = None

    def add_from_environment(self, environ: Mapping[str, str] | None = None) -> None:
        for name, value in (os.environ if environ is None else environ).items():
            if SECRET_NAME.search(name):
                self.add(value, name)

    def names(self) -> Iterable[str]:
        return sorted({name for name in self._values.values() if name})

    def mask(self, text: str) -> str:
        if not self._values or not text:
            return text
        if self._pattern is None:
            # Longest first, so a secret containing another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(value) for value in ordered))
        return self._pattern.sub(MASK, text)

    def clear(self) -> None:
        self._values.clear()
        self._pattern = None


SECRETS = SecretRegistry()
