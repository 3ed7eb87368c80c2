"""pytest lists every logger at each test phase while checks run ahead in threads make new ones."""

from __future__ import annotations

import logging
import threading

from runbook.run import logger_race


def test_listing_the_loggers_while_a_thread_makes_new_ones_never_fails() -> None:
    """As pytest's catching_logs does (loggerDict.values(), no lock) against getLogger in a thread:
    'dictionary changed size during iteration' turned a healthy check red in make test."""
    logger_race.install()
    logger_race.install()  # idempotent
    assert isinstance(logging.root.manager.loggerDict, logger_race.SnapshotValues)
    made = threading.Event()

    def make() -> None:
        for number in range(20_000):
            logging.getLogger(f"runbook.selftest.race.{number}")
        made.set()

    maker = threading.Thread(target=make)
    maker.start()
    listed = 0
    while not made.is_set():
        for logger in logging.root.manager.loggerDict.values():
            listed += isinstance(logger, logging.Logger)
    maker.join()
    assert listed > 0
    assert (
        logging.getLogger("runbook.selftest.race.19999")
        is logging.root.manager.loggerDict["runbook.selftest.race.19999"]
    )
