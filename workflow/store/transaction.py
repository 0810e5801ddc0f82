"""The writes of one command, inside its ``BEGIN IMMEDIATE`` transaction."""
from __future__ import annotations

import functools
import sqlite3
from contextlib import contextmanager
from typing import Iterable, Iterator

from workflow.store.schema import CERTIFICATE_COLUMNS, EVENT_COLUMNS, ORDER_COLUMNS

_INSERT_ORDER = (f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(ORDER_COLUMNS))})")
_SELECT_ORDER = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE id = ?"
_INSERT_EVENT = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")
_UPSERT_EFFECT = (
    "INSERT INTO outbox (order_id, seq, state, effect, param, idem_key, bound, status, "
    "attempts, next_at, created_at) VALUES (?,?,?,?,?,?,?,'pending',0,?,?) "
    "ON CONFLICT(idem_key) DO UPDATE SET status='pending', attempts=0, "
    "next_at=excluded.next_at, lease_owner=NULL, lease_until=NULL")
_INSERT_NOTICE = (
    "INSERT OR IGNORE INTO outbox (order_id, seq, state, effect, param, idem_key, bound, "
    "status, attempts, next_at, created_at) VALUES (?,?,?,?,?,?,?,'pending',0,?,?)")
_FREE = "lease_owner = NULL, lease_until = NULL"


@functools.lru_cache(maxsize=64)
def _update_sql(columns: tuple[str, ...]) -> str:
    """The statement for one set of columns, made once (commands set the same few sets)."""
    unknown = set(columns) - set(ORDER_COLUMNS)
    if unknown:  # column names become SQL text: only the schema's own
        raise ValueError(f"not an orders column: {', '.join(sorted(unknown))}")
    sets = ", ".join(f"{c} = ?" for c in columns)
    return f"UPDATE orders SET {sets} WHERE id = ? AND version = ?"


class Transaction:
    """Every statement a command writes with. Rows go in and come out as dicts."""

    # dialect twins (workflow/store/dialect.py): SQLite's BEGIN IMMEDIATE already keeps
    # every other writer out; PostgreSQL's transaction locks the rows it reads to change
    LOCK_ROW = ""    # a row this command will change (PostgreSQL: FOR UPDATE)
    CLAIM_ROWS = ""  # rows one worker takes; others pass them by (FOR UPDATE SKIP LOCKED)
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextmanager
    def savepoint(self, name: str = "step") -> Iterator[None]:
        """Undo only this part on an exception (the rest of the transaction stays)."""
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            raise
        finally:
            self.conn.execute(f"RELEASE {name}")

    # --- orders, events, certificates ------------------------------------------------

    def order_exists(self, order_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM orders WHERE id = ?", (order_id,)).fetchone() \
            is not None

    def has_renewal(self, order_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM orders WHERE renewal_of = ?",
                                 (order_id,)).fetchone() is not None

    def insert_order(self, row: dict) -> bool:
        """False when the id is taken (the caller draws another)."""
        try:
            self.conn.execute(_INSERT_ORDER, tuple(map(row.get, ORDER_COLUMNS)))
        except sqlite3.IntegrityError:
            if self.order_exists(row["id"]):
                return False
            raise
        return True

    def load_order(self, order_id: str) -> dict | None:
        row = self.conn.execute(_SELECT_ORDER + self.LOCK_ROW, (order_id,)).fetchone()
        return dict(row) if row is not None else None

    def update_order(self, order_id: str, version: int, updates: dict) -> int | None:
        """Write ``updates`` if the row is still at ``version``; else the version found
        (None: the order is gone). Returns ``version`` on success."""
        cur = self.conn.execute(_update_sql(tuple(updates)), (*updates.values(), order_id, version))
        if cur.rowcount == 1:
            return version
        found = self.conn.execute("SELECT version FROM orders WHERE id = ?", (order_id,)).fetchone()
        return found[0] if found else None

    def clear_deadline(self, order_id: str) -> None:
        self.conn.execute("UPDATE orders SET deadline_at = NULL, deadline_trigger = NULL "
                          "WHERE id = ?", (order_id,))

    def due_deadlines(self, stamp: str, limit: int, skip: set[str]) -> list[dict]:
        return [dict(r) for r in self.conn.execute(
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE deadline_at <= ? "
            f"ORDER BY deadline_at LIMIT ?{self.CLAIM_ROWS}", (stamp, limit + len(skip)))
            if r["id"] not in skip][:limit]

    def order_for_application(self, application_id: str) -> str | None:
        row = self.conn.execute("SELECT id FROM orders WHERE json_extract(data, "
                                "'$.application_id') = ?", (application_id,)).fetchone()
        return row[0] if row else None

    def append_event(self, event: dict) -> None:
        self.conn.execute(_INSERT_EVENT, tuple(map(event.get, EVENT_COLUMNS)))

    def append_events(self, events: Iterable[dict]) -> None:
        self.conn.executemany(_INSERT_EVENT, [tuple(e.get(c) for c in EVENT_COLUMNS)
                                              for e in events])

    def put_certificate(self, cert: dict, replace: bool = True) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self.conn.execute(f"{verb} INTO certificates ({', '.join(CERTIFICATE_COLUMNS)}) "
                          f"VALUES ({', '.join('?' * len(CERTIFICATE_COLUMNS))})",
                          tuple(cert.get(c) for c in CERTIFICATE_COLUMNS))

    def import_order(self, row: dict, events: list[dict], certificate: dict | None) -> str | None:
        """An imported order with its history; the conflict with what is here (e.g. a
        ``renewal_of`` that already has a renewal) as text, or None when it went in."""
        try:
            with self.savepoint("import_order"):
                self.conn.execute(_INSERT_ORDER, tuple(map(row.get, ORDER_COLUMNS)))
                self.append_events(events)
                if certificate:
                    self.put_certificate(certificate, replace=False)
        except self.integrity_errors as exc:
            return str(exc).splitlines()[0]
        return None

    def insert_key(self, order_id: str, algorithm: str, sealed: bytes, stamp: str) -> None:
        """The first key stays: a crashed earlier attempt may have stored one."""
        self.conn.execute("INSERT OR IGNORE INTO keys VALUES (?, ?, ?, ?)",
                          (order_id, algorithm, sealed, stamp))

    # --- the outbox ------------------------------------------------------------------

    def queue_effects(self, rows: list[tuple], stamp: str) -> None:
        """rows: (order_id, seq, state, effect, param, idem_key, bound, next_at); a row
        whose idempotency key exists is made pending again (a resumed order's work)."""
        self.conn.executemany(_UPSERT_EFFECT, [(*r, stamp) for r in rows])

    def queue_notice(self, row: tuple, stamp: str) -> None:
        """Like queue_effects, but a key that exists is left alone (happens once)."""
        self.conn.execute(_INSERT_NOTICE, (*row, stamp))

    def poll_soon(self, order_id: str, effect: str, stamp: str) -> None:
        self.conn.execute("UPDATE outbox SET next_at = ? WHERE order_id = ? AND effect = ? "
                          "AND status = 'pending'", (stamp, order_id, effect))

    def due_effects(self, stamp: str, limit: int, skip: set[int] | frozenset) -> list[dict]:
        """Free due rows (no lease, or a lapsed one)."""
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? "
            f"AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_at, id LIMIT ?{self.CLAIM_ROWS}",
            (stamp, stamp, limit + len(skip))) if r["id"] not in skip][:limit]

    def lease_owners(self, stamp: str, except_owner: str) -> list[str]:
        """Other workers holding live leases on due rows."""
        return [o for (o,) in self.conn.execute(
            "SELECT DISTINCT lease_owner FROM outbox WHERE status = 'pending' AND next_at <= ? "
            "AND lease_until > ? AND lease_owner != ?", (stamp, stamp, except_owner))]

    def leased_effects(self, stamp: str, owners: list[str]) -> list[dict]:
        return [dict(r) for r in self.conn.execute(
            f"SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? AND lease_until > ? "
            f"AND lease_owner IN ({', '.join('?' * len(owners))}) ORDER BY next_at, id{self.CLAIM_ROWS}",
            (stamp, stamp, *owners))]

    def lease(self, ids: list[int], owner: str, until: str) -> None:
        self.conn.executemany("UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?",
                              [(owner, until, i) for i in ids])

    def release(self, effect_id: int, owner: str) -> None:
        self.conn.execute(f"UPDATE outbox SET {_FREE} WHERE id = ? AND lease_owner = ?",
                          (effect_id, owner))

    def postpone(self, effect_id: int, next_at: str, note: str | None,
                 attempts: int | None = None) -> None:
        """Pending again at ``next_at``, lease freed; ``attempts`` counts a failed try."""
        self.conn.execute(f"UPDATE outbox SET next_at = ?, {_FREE}, last_error = ?, "
                          "attempts = COALESCE(?, attempts) WHERE id = ? AND status = 'pending'",
                          (next_at, note, attempts, effect_id))

    def effect_pending(self, effect_id: int) -> bool:
        row = self.conn.execute("SELECT status FROM outbox WHERE id = ?", (effect_id,)).fetchone()
        return row is not None and row[0] == "pending"

    def end_effect(self, effect_id: int, status: str, stamp: str, note: str | None,
                   attempts: int | None = None) -> bool:
        """done / dropped / failed, if still pending; False when another worker ended it."""
        cur = self.conn.execute(
            f"UPDATE outbox SET status = ?, done_at = ?, {_FREE}, "
            "last_error = COALESCE(?, last_error), attempts = COALESCE(?, attempts) "
            "WHERE id = ? AND status = 'pending'", (status, stamp, note, attempts, effect_id))
        return cur.rowcount == 1
