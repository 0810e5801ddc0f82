"""SQLite persistence: connection settings, named migrations, one-transaction helper.

WAL with ``synchronous=FULL`` by default: a committed transition survives power loss.
Every command runs inside :meth:`Store.immediate` (``BEGIN IMMEDIATE``), which serialises
writers across processes; readers never block.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from adapters.common.sqlite_tx import use_wal

from workflow.errors import ConfigError

Migration = Callable[[sqlite_utils.Database], None]


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["orders"].create({
        "id": str, "state": str, "version": int, "entered_seq": int,
        "common_name": str, "sans": str, "plan": str, "contract": str, "validation": str,
        "approver": str, "email": str, "language": str, "organization": str, "unit": str,
        "locality": str, "prefecture": str, "country": str, "renewal_of": str,
        "csr": str, "reason": str, "held_from": str, "held_deadline": str,
        "deadline_at": str, "deadline_trigger": str, "data": str,
        "created_at": str, "updated_at": str,
    }, pk="id", not_null={"state", "version", "common_name", "plan", "contract"})
    db["orders"].create_index(["state"])
    db["orders"].create_index(["deadline_at"])
    db["orders"].create_index(["renewal_of"], unique=True)
    db["events"].create({
        "order_id": str, "seq": int, "at": str, "trigger": str, "source": str, "dest": str,
        "actor": str, "data": str,
    }, pk=("order_id", "seq"), foreign_keys=[("order_id", "orders", "id")])
    db["outbox"].create({
        "id": int, "order_id": str, "seq": int, "state": str, "effect": str, "param": str,
        "idem_key": str, "bound": int, "status": str, "attempts": int, "next_at": str,
        "lease_owner": str, "lease_until": str, "last_error": str, "created_at": str,
        "done_at": str,
    }, pk="id")
    db["outbox"].create_index(["idem_key"], unique=True)
    db["outbox"].create_index(["status", "next_at"])
    db["certificates"].create({
        "order_id": str, "serial": str, "not_before": str, "not_after": str, "sha256": str,
        "names": str, "cert_pem": str, "chain_pem": str, "issued_at": str,
    }, pk="order_id")
    db["certificates"].create_index(["not_after"])
    db["keys"].create({"order_id": str, "algorithm": str, "sealed": bytes, "created_at": str},
                      pk="order_id")


MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("001_initial", _m001_initial),
)
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """One SQLite database file. Not shared across threads: open one Store per thread."""

    def __init__(self, path: str, synchronous: str = "full", busy_timeout_ms: int = 15000) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        use_wal(conn)
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys=ON")
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.migrate()

    def migrate(self) -> None:
        """Apply named migrations not yet recorded, each in its own transaction."""
        with self.immediate() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                         "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT name FROM schema_version")}
            for number, (name, migration) in enumerate(MIGRATIONS, start=1):
                if name in done:
                    continue
                migration(self.db)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, datetime('now'))",
                             (number, name))
            newest = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        if newest > SCHEMA_VERSION:
            raise ConfigError("store.path", f"database schema version {newest} is newer than this "
                              f"certflow ({SCHEMA_VERSION}); upgrade certflow", self.path)

    def schema_version(self) -> int:
        return self.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0

    @contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
