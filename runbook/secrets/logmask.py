"""Log records are masked where they are made, before any handler sees them.

With `--log-level=DEBUG`, httpx logs request URLs (with their userinfo),
httpcore the response headers, testinfra every command line it runs. pytest's
handlers come and go per test phase (captured logs for reports and JUnit, live
logs, `--log-file`), libraries may add their own, and `logging.lastResort`
writes to stderr when there is none: a filter on some of them misses the rest.
A record factory sees every record once, so that is where the secrets go: the
message is formatted with its arguments and masked, and so are the traceback
and stack text.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from runbook.secrets import SECRETS

_FORMATTER = logging.Formatter()


def mask_record(record: logging.LogRecord) -> None:
    """The formatted message, masked, becomes the message; nothing is left to format later."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging would print msg and args raw to stderr
        message = f"unformattable log message ({record.msg!r} % {record.args!r})"
    record.msg = SECRETS.mask(message)
    record.args = ()
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = SECRETS.mask(record.exc_text)
    if record.stack_info:
        record.stack_info = SECRETS.mask(record.stack_info)
    if record.threadName:  # runbook.host.http_client names its threads after the URL they fetch
        record.threadName = SECRETS.mask(record.threadName)


class _MaskingFactory:
    """Wraps the record factory in place when installed; restores it on uninstall."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.previous(*args, **kwargs)
        mask_record(record)
        return record


def install_log_masking(config: pytest.Config | None = None) -> None:
    """Mask every log record of this process; undone at the end of the pytest run given."""
    current = logging.getLogRecordFactory()
    if isinstance(current, _MaskingFactory):
        return
    factory = _MaskingFactory(current)
    logging.setLogRecordFactory(factory)
    if config is not None:
        config.add_cleanup(lambda: uninstall_log_masking(factory))


def uninstall_log_masking(factory: _MaskingFactory | None = None) -> None:
    current = logging.getLogRecordFactory()
    if isinstance(current, _MaskingFactory) and (factory is None or current is factory):
        logging.setLogRecordFactory(current.previous)
