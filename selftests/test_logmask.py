"""Log masking (runbook.secrets.logmask): a record is masked where it is made, for every handler."""

from __future__ import annotations

import base64
import io
import logging
import shlex
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from runbook.secrets import MASK, SECRETS
from runbook.secrets.logmask import install_log_masking, uninstall_log_masking

SECRET = 'q7"Zebra<Lantern>&5521'


@pytest.fixture
def masking() -> Iterator[None]:
    SECRETS.add(SECRET, "RB_SELFTEST_ROBOT_PASS")
    install_log_masking()
    yield
    uninstall_log_masking()


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own with a plain stream handler (what --log-file or a library would add)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(threadName)s %(message)s"))
    log = logging.getLogger("rb-selftest-logmask")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


def test_message_and_arguments_are_masked(masking: None, logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = logger
    url = f"http://robot:{quote(SECRET, safe='')}@127.0.0.1:8080/echo"
    basic = base64.b64encode(f"robot:{SECRET}".encode()).decode()
    log.info('HTTP Request: %s %s "%s"', "GET", url, "HTTP/1.1 200 OK")
    log.debug("receive_response_headers.complete return_value=%r", [(b"X-Echo", f"Basic {basic}".encode())])
    log.debug("RUN %r", f"sh -c {shlex.quote('curl -H ' + shlex.quote('X-Key: ' + SECRET))}".encode())
    text = stream.getvalue()
    assert "Zebra" not in text and basic not in text, text
    assert "GET http://robot:***@127.0.0.1:8080/echo" in text
    assert text.count(MASK) >= 3


def test_traceback_and_thread_name_are_masked(
    masking: None, logger: tuple[logging.Logger, io.StringIO]
) -> None:
    log, stream = logger

    def fail() -> None:
        try:
            raise ValueError(f"login failed for {SECRET}")
        except ValueError:
            log.exception("check failed")

    # runbook.host.http_client names its worker threads after the URL they fetch.
    worker = threading.Thread(target=fail, name=f"runbook http GET http://robot:{SECRET}@host/")
    worker.start()
    worker.join()
    text = stream.getvalue()
    assert "ERROR runbook http GET http://robot:***@host/ check failed" in text
    assert f"ValueError: login failed for {MASK}" in text
    assert "Zebra" not in text


def test_last_resort_on_stderr_is_masked(masking: None, capsys: pytest.CaptureFixture[str]) -> None:
    orphan = logging.getLogger("rb-selftest-orphan")
    orphan.propagate = False  # no handler anywhere: logging.lastResort writes to stderr
    orphan.warning("token %s rejected", SECRET)
    assert capsys.readouterr().err == f"token {MASK} rejected\n"


def test_unformattable_message_does_not_print_its_arguments(
    masking: None, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = logging.getLogger("rb-selftest-orphan-unformattable")
    orphan.propagate = False
    orphan.warning("token %d rejected", SECRET)  # logging would print msg and args raw
    err = capsys.readouterr().err
    assert "unformattable log message" in err
    assert "Zebra" not in err


def test_pytest_captured_logs_are_masked(masking: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpx").info("HTTP Request: GET http://robot:%s@host/", SECRET)
    assert caplog.text.strip().endswith("HTTP Request: GET http://robot:***@host/")
    assert caplog.records[0].getMessage() == "HTTP Request: GET http://robot:***@host/"


def test_install_is_idempotent_and_undone() -> None:
    before = logging.getLogRecordFactory()
    install_log_masking()
    masking_factory = logging.getLogRecordFactory()
    install_log_masking()
    assert logging.getLogRecordFactory() is masking_factory
    uninstall_log_masking()
    assert logging.getLogRecordFactory() is before
