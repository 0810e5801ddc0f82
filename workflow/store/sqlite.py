"""The SQLite store: connection settings, migrations, reads; writes go through
:class:`workflow.store.transaction.Transaction` (one ``BEGIN IMMEDIATE`` each).

WAL with ``synchronous=FULL`` by default: a committed transition survives power loss.
Readers never take the write lock. One connection per Store, guarded by a lock, so one
Store (and one Engine) may be shared by threads; their commands take turns, as SQLite
writers do anyway. The database and its ``-wal``/``-shm`` files are created 0600.
SQLite's busy, full and read-only conditions become :class:`StoreUnavailable`.
"""
from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlite_utils

from adapters.common.sqlite_tx import use_wal
from workflow.errors import ConfigError, StoreUnavailable
from workflow.store.observe import ObservationReads
from workflow.store.operator_reads import OperatorReads
from workflow.store.records import order_record as _record
from workflow.store.schema import (CERTIFICATE_COLUMNS, EVENT_COLUMNS, MIGRATIONS, ORDER_COLUMNS,
                                   SCHEMA_VERSION)
from workflow.store.schema import CONTRACT_CHANGE_COLUMNS, CONTRACT_COLUMNS
from workflow.store.transaction import Transaction

_CONDITIONS = {sqlite3.SQLITE_BUSY: "busy", sqlite3.SQLITE_LOCKED: "busy",
               sqlite3.SQLITE_FULL: "full", sqlite3.SQLITE_READONLY: "read-only",
               sqlite3.SQLITE_CANTOPEN: "read-only"}
_ORDER_SELECT = ", ".join(f"o.{c}" for c in ORDER_COLUMNS)
_CERT_SUMMARY = "c.serial, c.not_before, c.not_after, c.sha256"
_SELECT_CONTRACT = f"SELECT {', '.join(CONTRACT_COLUMNS)} FROM contracts"


def _error_code(sqlite_error: sqlite3.Error) -> int | None:
    """The primary SQLite result code, None for errors not raised by the library."""
    # a vendor exception: only those raised by the SQLite library carry the code
    code = getattr(sqlite_error, "sqlite_errorcode", None)
    return code & 0xFF if code is not None else None


def condition_of(sqlite_error: sqlite3.Error) -> str | None:
    """busy / full / read-only for the SQLite errors that are temporary, else None."""
    return _CONDITIONS.get(_error_code(sqlite_error))


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it gives -wal and -shm the
    database file's mode), whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteStore(ObservationReads, OperatorReads):
    """One SQLite database file (see the module docstring)."""

    def __init__(self, path: str, synchronous: str = "full", busy_timeout_ms: int = 15000,
                 writers: threading.RLock | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        # shared by the stores another() opens: this process's writers queue here, in
        # order, instead of polling SQLite's busy handler against each other
        self._writers = writers or threading.RLock()
        self._settings = (synchronous, busy_timeout_ms)
        try:
            _create_private(Path(path))
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000,
                                   check_same_thread=False)
        except OSError as exc:
            raise ConfigError("store.path", f"cannot create the database {path}: "
                              f"{exc.strerror or exc}") from None
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        conn.row_factory = sqlite3.Row
        self.conn = conn  # for tests and tools; certflow's code goes through the methods
        with self.reading():
            use_wal(conn)
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    # --- plumbing --------------------------------------------------------------------

    def _unavailable(self, exc: sqlite3.Error) -> Exception:
        condition = condition_of(exc)
        if condition:
            return StoreUnavailable(condition, self.path)
        if _error_code(exc) in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            return ConfigError("store.path", f"store.path {self.path} is not a certflow "
                               "database, or is damaged (`certflow doctor` says which)")
        return exc

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads (autocommit: no write lock), errors mapped."""
        with self._lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One command: BEGIN IMMEDIATE … COMMIT (ROLLBACK on any exception), the writes
        as methods of the Transaction."""
        with self._writers, self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None
            try:
                yield Transaction(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._unavailable(exc) from None
                raise

    @contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """:meth:`transaction` on the raw connection (migrations, tests and tools)."""
        with self.transaction() as tx:
            yield tx.conn

    @contextmanager
    def snapshot(self) -> Iterator["SQLiteStore"]:
        """A read transaction (BEGIN DEFERRED): every read inside sees one moment."""
        with self.reading() as conn:
            conn.execute("BEGIN")
            try:
                yield self
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def another(self, synchronous: str | None = None) -> "SQLiteStore":
        """A second store on the same database with a connection of its own, for a worker
        thread: its reads run beside this one's; its writes queue with this one's.
        ``synchronous="normal"`` suits a connection that writes only leases: a lease lost
        to a power cut frees its row, which the lease protocol allows for anyway (and the
        next FULL commit of any connection syncs the log up to it)."""
        return SQLiteStore(self.path, synchronous or self._settings[0], self._settings[1],
                           writers=self._writers)

    # --- schema ----------------------------------------------------------------------

    def schema_version(self) -> int:
        with self.reading() as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'schema_version'").fetchone() is None:
                return 0
            return conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0

    def migrate(self) -> None:
        """Apply named migrations not yet recorded, each in its own transaction. A current
        schema is only read: read-only commands never wait for the write lock."""
        newest = self.schema_version()
        if newest > SCHEMA_VERSION:
            raise ConfigError("store.path", f"database schema version {newest} is newer than this "
                              f"certflow ({SCHEMA_VERSION}); upgrade certflow", self.path)
        if newest == SCHEMA_VERSION:
            return
        db = sqlite_utils.Database(self.conn)
        for number, (name, migration) in enumerate(MIGRATIONS, start=1):
            with self.immediate() as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER "
                             "PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
                if conn.execute("SELECT 1 FROM schema_version WHERE name = ?",
                                (name,)).fetchone():
                    continue  # another process applied it meanwhile
                migration(db)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, datetime('now'))",
                             (number, name))

    # --- orders ----------------------------------------------------------------------

    def order(self, order_id: str) -> dict | None:
        """The order row with its certificate summary (``certificate`` None without one)."""
        with self.reading() as conn:
            row = conn.execute(f"SELECT {_ORDER_SELECT}, {_CERT_SUMMARY} FROM orders o LEFT JOIN "
                               "certificates c ON c.order_id = o.id WHERE o.id = ?",
                               (order_id,)).fetchone()
        return _record(row) if row else None

    def orders(self, state: str | None = None) -> list[dict]:
        sql = (f"SELECT {_ORDER_SELECT}, {_CERT_SUMMARY} FROM orders o "
               "LEFT JOIN certificates c ON c.order_id = o.id")
        args: tuple = ()
        if state:
            sql, args = sql + " WHERE o.state = ?", (state,)
        with self.reading() as conn:
            return [_record(r) for r in conn.execute(sql + " ORDER BY o.created_at, o.rowid", args)]

    def events(self, order_id: str) -> list[dict]:
        with self.reading() as conn:
            return [dict(r) for r in conn.execute(
                f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE order_id = ? ORDER BY seq",
                (order_id,))]

    def event_time(self, order_id: str, seq: int) -> str | None:
        with self.reading() as conn:
            row = conn.execute("SELECT at FROM events WHERE order_id = ? AND seq = ?",
                               (order_id, seq)).fetchone()
        return row[0] if row else None

    def certificate_pem(self, order_id: str) -> tuple[str, str] | None:
        """(certificate PEM, chain PEM) of the order, or None."""
        with self.reading() as conn:
            row = conn.execute("SELECT cert_pem, chain_pem FROM certificates WHERE order_id = ?",
                               (order_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def sealed_key(self, order_id: str) -> bytes | None:
        with self.reading() as conn:
            row = conn.execute("SELECT sealed FROM keys WHERE order_id = ?", (order_id,)).fetchone()
        return row[0] if row else None

    def renewal_candidates(self, states: tuple[str, ...]) -> list[dict]:
        """Orders in ``states`` with a certificate and no renewal yet."""
        with self.reading() as conn:
            return [dict(r) for r in conn.execute(
                "SELECT o.id, o.contract, c.not_before, c.not_after FROM orders o "
                "JOIN certificates c ON c.order_id = o.id "
                f"WHERE o.state IN ({', '.join('?' * len(states))}) "
                "AND json_extract(o.data, '$.imported') IS NULL "  # history from elsewhere
                "AND NOT EXISTS (SELECT 1 FROM orders r WHERE r.renewal_of = o.id)", states)]

    def any_effect_due(self, stamp: str) -> bool:
        with self.reading() as conn:
            return conn.execute("SELECT 1 FROM outbox WHERE status = 'pending' AND next_at <= ? "
                                "LIMIT 1", (stamp,)).fetchone() is not None

    def next_effect_at(self) -> str | None:
        """When the next pending effect that nobody holds falls due (the dispatcher
        sleeps until then)."""
        with self.reading() as conn:
            return conn.execute("SELECT min(next_at) FROM outbox WHERE status = 'pending' AND "
                                "lease_until IS NULL").fetchone()[0]

    def operator(self, name: str) -> dict | None:
        """A console login: name, password_hash, created_at."""
        with self.reading() as conn:
            row = conn.execute("SELECT name, password_hash, created_at FROM operators "
                               "WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    # --- histories (replay, export) --------------------------------------------------

    def order_count(self) -> int:
        with self.reading() as conn:
            return conn.execute("SELECT count(*) FROM orders").fetchone()[0]

    def known_ids(self, ids: list[str]) -> set[str]:
        with self.reading() as conn:
            return {r[0] for r in conn.execute(
                f"SELECT id FROM orders WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))}

    def positions(self, ids: list[str] | None) -> dict[str, tuple]:
        """id → (state, version, deadline_at) of the stored rows. An imported order keeps
        its exported deadline in data.imported (none is live here)."""
        sql, args = ("SELECT id, state, version, COALESCE(deadline_at, "
                     "json_extract(data, '$.imported.deadline_at')) FROM orders"), ()
        if ids is not None:
            sql, args = sql + f" WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids)
        with self.reading() as conn:
            cur = conn.execute(sql, args)
            cur.row_factory = None
            return {r[0]: r[1:] for r in cur}

    def event_steps(self, ids: list[str] | None) -> Iterator[tuple]:
        """(order_id, seq, at, trigger, source, dest) of every event, by order and seq,
        streamed in chunks."""
        sql, args = "SELECT order_id, seq, at, trigger, source, dest FROM events", ()
        if ids is not None:
            sql, args = sql + f" WHERE order_id IN ({', '.join('?' * len(ids))})", tuple(ids)
        with self.reading() as conn:
            cur = conn.execute(sql + " ORDER BY order_id, seq", args)
            cur.row_factory = None  # plain tuples: the fold unpacks them

        def chunks() -> Iterator[list[tuple]]:
            while True:
                with self.reading():  # held per chunk, not per row
                    rows = cur.fetchmany(5000)
                if not rows:
                    return
                yield rows
        return itertools.chain.from_iterable(chunks())

    def export_rows(self) -> tuple[Iterator, Iterator, Iterator]:
        """Orders, certificates and events, each ordered by order id (and seq); use
        inside :meth:`snapshot`."""
        conn = self.conn
        return (conn.execute(f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders ORDER BY id"),
                conn.execute(f"SELECT {', '.join(CERTIFICATE_COLUMNS)} FROM certificates "
                             "ORDER BY order_id"),
                conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                             "ORDER BY order_id, seq"))

    # --- the contract book -------------------------------------------------------------

    def contract(self, contract_id: str) -> dict | None:
        """One contract row (primary-key lookup), or None."""
        with self.reading() as conn:
            row = conn.execute(_SELECT_CONTRACT + " WHERE id = ?", (contract_id,)).fetchone()
        return dict(row) if row else None

    def contracts(self, status: str | None = None) -> list[dict]:
        sql, args = _SELECT_CONTRACT, ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        with self.reading() as conn:
            return [dict(r) for r in conn.execute(sql + " ORDER BY id", args)]

    def contract_changes(self, contract_id: str) -> list[dict]:
        with self.reading() as conn:
            return [dict(r) for r in conn.execute(
                f"SELECT {', '.join(CONTRACT_CHANGE_COLUMNS)} FROM contract_changes "
                "WHERE contract_id = ? ORDER BY id", (contract_id,))]

    # --- the daemon's watcher --------------------------------------------------------

    def commit_counter(self):
        """A callable returning a number that changes whenever another connection commits
        (``PRAGMA data_version`` on a connection of its own), and its close function."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

        def counter() -> int | None:
            try:
                return conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:  # e.g. locked during a checkpoint: look again
                return None
        return counter, conn.close


def inspect(path: str, final_states: tuple[str, ...] = ()) -> dict:
    """Read-only look at a database file for ``doctor``: integrity, schema, orders, the
    orders not in ``final_states`` per contract, and which of those contracts the contract
    book holds (``booked``). Raises sqlite3.Error when unreadable."""
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        ok = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        has_versions = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                    "name = 'schema_version'").fetchone()
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] \
            if has_versions else 0
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0] if version else 0
        in_flight = conn.execute(
            "SELECT contract, count(*) FROM orders WHERE state NOT IN (%s) GROUP BY contract"
            % ",".join("?" * len(final_states)), final_states).fetchall() \
            if version and final_states else []
        has_book = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'contracts'").fetchone()
        booked = {r[0] for r in conn.execute(
            "SELECT id FROM contracts WHERE id IN (%s)" % ",".join("?" * len(in_flight)),
            [c for c, _ in in_flight])} if has_book and in_flight else set()
    finally:
        conn.close()
    return {"integrity": ok, "version": version or 0, "orders": orders, "in_flight": in_flight,
            "booked": booked}

