"""SQLite databases of stand-in services, changed from outside as an operator would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lab.core import wait_until


def journal_mode(db: Path) -> str:
    connection = sqlite3.connect(db, timeout=5)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    finally:
        connection.close()


def set_journal_mode(db: Path, mode: str) -> None:
    """Switch `db` to `mode`; retries while the service holds its write lock."""

    def attempt() -> bool:
        connection = sqlite3.connect(db, timeout=5)
        try:
            return str(connection.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]).lower() == mode
        finally:
            connection.close()

    wait_until(attempt, timeout=30, what=f"{db.name} journal_mode={mode}", interval=0.2)
