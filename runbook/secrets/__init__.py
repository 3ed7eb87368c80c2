"""Secrets: what a run must never show, in any encoding, and the masking of logs and artifacts."""

from __future__ import annotations

from runbook.secrets.registry import MASK, MIN_SECRET_LENGTH, SECRET_NAME, SECRETS, SecretRegistry, is_a_limit

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SECRETS", "SECRET_NAME", "SecretRegistry", "is_a_limit"]
