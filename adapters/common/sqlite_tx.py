"""``BEGIN IMMEDIATE`` transactions for the adapters' own small SQLite databases."""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator

from adapters.base import PermanentError, TransientError


def use_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to WAL. Two processes opening a new file at once can see "database is
    locked" here even with a busy timeout (the switch is not covered by it): retry."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` on any exception. The connection
    must be in autocommit mode (``isolation_level=None``)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def sqlite_edge(path: str) -> Iterator[None]:
    """The edge of an adapter's own SQLite file: a busy, full or read-only database is
    TransientError (it may pass), anything else (damaged file, schema) PermanentError."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise TransientError(f"database {path} unavailable: {exc}", path=path) from exc
    except sqlite3.Error as exc:
        raise PermanentError(f"database {path} unusable: {type(exc).__name__}: {exc}",
                             path=path) from exc
