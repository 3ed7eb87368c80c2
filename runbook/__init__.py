"""runbook-suite: operational runbooks as a pytest suite that checks real hosts."""

from __future__ import annotations

from runbook.errors import CheckError, CheckFailed, require

__all__ = ["CheckError", "CheckFailed", "require"]
