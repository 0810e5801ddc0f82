"""The writes of one command, inside its ``BEGIN IMMEDIATE`` transaction."""
from __future__ import annotations

import functools
import sqlite3
from contextlib import contextmanager
from typing import Iterable, Iterator

from workflow.store.operator_writes import OperatorWrites
from workflow.store.schema import CERTIFICATE_COLUMNS, EVENT_COLUMNS, ORDER_COLUMNS
from workflow.store.schema import CONTRACT_CHANGE_COLUMNS, CONTRACT_COLUMNS

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


class Transaction(OperatorWrites):
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
        self.index_names(row["id"], row["common_name"], row["sans"])
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
                self.index_names(row["id"], row["common_name"], row["sans"])
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

    def poll_soon(self, order_id: str, effect: str) -> None:
        """Due at once. Due since the row was made, not since "now": a wall clock stepped
        back (NTP on a freshly booted host) must not push the look past the next pass."""
        self.conn.execute("UPDATE outbox SET next_at = created_at WHERE order_id = ? "
                          "AND effect = ? AND status = 'pending'", (order_id, effect))

    def lease_owners(self, stamp: str, except_owner: str) -> list[str]:
        """Other workers holding live leases on due rows."""
        return [o for (o,) in self.conn.execute(
            "SELECT DISTINCT lease_owner FROM outbox WHERE status = 'pending' AND next_at <= ? "
            "AND lease_until > ? AND lease_owner != ?", (stamp, stamp, except_owner))]

    def claim_effects(self, stamp: str, owner: str, until: str, wanted: list[tuple[str, int]],
                      limit: int, skip: set[int] | frozenset = frozenset(),
                      dead_owners: list[str] | tuple = ()) -> list[dict]:
        """The claim, in one method (on PostgreSQL ``CLAIM_ROWS`` makes it ``FOR UPDATE
        SKIP LOCKED``: daemons pass each other's rows by): for each (kind, n) of ``wanted``, in that order, up
        to n due rows of that kind, oldest ``next_at`` first, ``limit`` in all, that are
        free (no lease, a lapsed one, or one held by a ``dead_owners`` worker), leased to
        ``owner`` until ``until``; rows in ``skip`` are left alone."""
        dead = tuple(dead_owners)
        taken_over = f" OR lease_owner IN ({', '.join('?' * len(dead))})" if dead else ""
        sql = ("SELECT * FROM outbox WHERE status = 'pending' AND effect = ? AND next_at <= ? "
               f"AND (lease_until IS NULL OR lease_until <= ?{taken_over}) "
               f"ORDER BY next_at, id LIMIT ?{self.CLAIM_ROWS}")
        rows: list[dict] = []
        for kind, n in wanted:
            n = min(n, limit - len(rows))
            if n <= 0:
                continue
            found = self.conn.execute(sql, (kind, stamp, stamp, *dead, n + len(skip)))
            rows += [dict(r) for r in found if r["id"] not in skip][:n]
        self.conn.executemany("UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?",
                              [(owner, until, r["id"]) for r in rows])
        return rows  # as they were before: lease_owner names a dead holder taken over

    def renew_leases(self, ids: list[int], owner: str, until: str) -> int:
        """Extend this worker's leases of rows still pending; how many it still held."""
        return sum(self.conn.execute(
            "UPDATE outbox SET lease_until = ? WHERE id = ? AND lease_owner = ? "
            "AND status = 'pending'", (until, i, owner)).rowcount for i in ids)

    def release_all(self, owner: str) -> int:
        """Hand back every lease ``owner`` holds on pending rows (a daemon stopping)."""
        return self.conn.execute(f"UPDATE outbox SET {_FREE} WHERE lease_owner = ? "
                                 "AND status = 'pending'", (owner,)).rowcount

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

    # --- the contract book -------------------------------------------------------------

    def load_contract(self, contract_id: str) -> dict | None:
        row = self.conn.execute(f"SELECT {', '.join(CONTRACT_COLUMNS)} FROM contracts "
                                "WHERE id = ?", (contract_id,)).fetchone()
        return dict(row) if row is not None else None

    def put_contracts(self, rows: list[dict]) -> None:
        """Insert or replace contract rows (the book records the change beside them)."""
        others = ", ".join(f"{c} = excluded.{c}" for c in CONTRACT_COLUMNS if c != "id")
        self.conn.executemany(
            f"INSERT INTO contracts ({', '.join(CONTRACT_COLUMNS)}) VALUES "
            f"({', '.join('?' * len(CONTRACT_COLUMNS))}) ON CONFLICT(id) DO UPDATE SET {others}",
            [tuple(map(r.get, CONTRACT_COLUMNS)) for r in rows])

    def append_contract_changes(self, rows: list[dict]) -> None:
        columns = [c for c in CONTRACT_CHANGE_COLUMNS if c != "id"]
        self.conn.executemany(
            f"INSERT INTO contract_changes ({', '.join(columns)}) VALUES "
            f"({', '.join('?' * len(columns))})", [tuple(map(r.get, columns)) for r in rows])

    def orders_of_contract(self, contract_id: str, states: tuple[str, ...]) -> list[dict]:
        """The order rows of a contract in ``states`` (a contract that stops being active)."""
        return [dict(r) for r in self.conn.execute(
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE contract = ? "
            f"AND state IN ({', '.join('?' * len(states))}) ORDER BY created_at, id",
            (contract_id, *states))]

    def order_for_site(self, contract_id: str, common_name: str,
                       states: tuple[str, ...]) -> tuple[str, str] | None:
        """(id, state) of an order for ``common_name`` on the contract in ``states``
        (index ``contract, common_name``), or None."""
        row = self.conn.execute(
            "SELECT id, state FROM orders WHERE contract = ? AND common_name = ? "
            f"AND state IN ({', '.join('?' * len(states))}) ORDER BY created_at LIMIT 1",
            (contract_id, common_name, *states)).fetchone()
        return (row[0], row[1]) if row else None

    # --- operators (console logins) ----------------------------------------------------

    def insert_operator(self, name: str, password_hash: str, stamp: str) -> bool:
        """False when the name is taken."""
        if self.conn.execute("SELECT 1 FROM operators WHERE name = ?", (name,)).fetchone():
            return False
        self.conn.execute("INSERT INTO operators (name, password_hash, created_at) "
                          "VALUES (?, ?, ?)", (name, password_hash, stamp))
        return True

    def delete_operator(self, name: str) -> bool:
        return self.conn.execute("DELETE FROM operators WHERE name = ?", (name,)).rowcount == 1
