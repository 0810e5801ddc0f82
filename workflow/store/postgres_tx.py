"""The PostgreSQL twins of :class:`workflow.store.transaction.Transaction`: only what
cannot be said in SQLite's dialect (see workflow/store/dialect.py). Everything else is
the SQLite statement, translated on its way to the server."""
from __future__ import annotations

import psycopg

from workflow.store.schema import CERTIFICATE_COLUMNS, ORDER_COLUMNS
from workflow.store.transaction import _INSERT_ORDER, Transaction

_UPSERT_CERTIFICATE = (
    f"INSERT INTO certificates ({', '.join(CERTIFICATE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(CERTIFICATE_COLUMNS))}) ON CONFLICT (order_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in CERTIFICATE_COLUMNS if c != "order_id"))
_INSERT_CERTIFICATE = (f"INSERT INTO certificates ({', '.join(CERTIFICATE_COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(CERTIFICATE_COLUMNS))})")


class PostgresTransaction(Transaction):
    """One command's transaction on PostgreSQL (READ COMMITTED, rows locked as read)."""

    LOCK_ROW = " FOR UPDATE"
    CLAIM_ROWS = " FOR UPDATE SKIP LOCKED"
    integrity_errors = (psycopg.IntegrityError,)

    def insert_order(self, row: dict) -> bool:
        # a failed statement aborts a PostgreSQL transaction: undo just this one (not in
        # SQLite's method: there a full disk ends the transaction, savepoint and all)
        try:
            with self.savepoint("insert_order"):
                self.conn.execute(_INSERT_ORDER, tuple(map(row.get, ORDER_COLUMNS)))
        except psycopg.IntegrityError:
            if self.order_exists(row["id"]):
                return False
            raise
        return True

    def has_renewal(self, order_id: str) -> bool:
        # daemons on other hosts open renewals too: one at a time per renewed order, so
        # the second sees the first's renewal instead of colliding on the unique index
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 22))",
                          (f"renewal:{order_id}",))
        return super().has_renewal(order_id)

    def put_certificate(self, cert: dict, replace: bool = True) -> None:
        self.conn.execute(_UPSERT_CERTIFICATE if replace else _INSERT_CERTIFICATE,
                          tuple(cert.get(c) for c in CERTIFICATE_COLUMNS))
