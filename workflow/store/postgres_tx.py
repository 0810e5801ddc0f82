"""The PostgreSQL twins of :class:`workflow.store.transaction.Transaction`: only what
cannot be said in SQLite's dialect (see workflow/store/dialect.py). Everything else is
the SQLite statement, translated on its way to the server."""
from __future__ import annotations

import psycopg

from workflow.store.schema import CERTIFICATE_COLUMNS
from workflow.store.transaction import Transaction

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

    def has_renewal(self, order_id: str) -> bool:
        # daemons on other hosts open renewals too: one at a time per renewed order, so
        # the second sees the first's renewal instead of colliding on the unique index
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 22))",
                          (f"renewal:{order_id}",))
        return super().has_renewal(order_id)

    def put_certificate(self, cert: dict, replace: bool = True) -> None:
        self.conn.execute(_UPSERT_CERTIFICATE if replace else _INSERT_CERTIFICATE,
                          tuple(cert.get(c) for c in CERTIFICATE_COLUMNS))
