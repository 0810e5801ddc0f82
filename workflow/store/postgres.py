"""The PostgreSQL store (``[store] url = "postgresql://USER@HOST:PORT/DB"``): several
daemons on several hosts share one durable database.

The reads and writes are SQLiteStore's and Transaction's statements, translated by
:mod:`workflow.store.dialect`; :mod:`workflow.store.postgres_tx` holds the few twins.
Connections come from a psycopg_pool pool (autocommit, ``synchronous_commit = on``,
``lock_timeout`` = store.busy_timeout_ms); a command takes one for its
``BEGIN … COMMIT`` and reads inside it see its writes, like SQLite's one connection.
A write transaction ends with ``NOTIFY certflow``: other daemons' watchers LISTEN.

At this edge psycopg's errors become certflow's: a server that is gone, refuses
connections or dropped ours is ``StoreUnavailable("unreachable")`` (exit 75); a
serialization failure or deadlock ``"conflict"`` (the daemon runs the job again); a
lock or statement timeout ``"busy"``; a full disk ``"full"``; a read-only server
``"read-only"``. A lost connection is dropped from the pool and a new one made at the
next command; leases held by a daemon that lost its connection lapse and others take
the rows over.
"""
from __future__ import annotations

import copy
import functools
import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from workflow.errors import ConfigError, StoreUnavailable
from workflow.store.dialect import postgres as to_postgres
from workflow.store.postgres_schema import pg_migrations
from workflow.store.postgres_tx import PostgresTransaction
from workflow.store.schema import MIGRATIONS, SCHEMA_VERSION
from workflow.store.sqlite import SQLiteStore

CHANNEL = "certflow"
_MIGRATION_LOCK = 22_0001  # advisory lock key: one process migrates at a time


def redact(url: str) -> str:
    """The URL without its password (for messages, logs and ``Store.path``)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def condition_of(exc: BaseException) -> str | None:
    """The StoreUnavailable condition of a psycopg error, None for a bug."""
    if isinstance(exc, (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)):
        return "conflict"
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.QueryCanceled)):
        return "busy"
    if isinstance(exc, (pg_errors.DiskFull, pg_errors.OutOfMemory)):
        return "full"
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return "read-only"
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError,
                        psycopg_pool.PoolTimeout)):
        return "unreachable"
    return None


class _Row(tuple):
    """A row read by index and by column name, like sqlite3.Row (``dict(row)`` works)."""
    __slots__ = ()
    _index: dict[str, int] = {}

    def keys(self):
        return self._index.keys()

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type:
    return type("Row", (_Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def row_factory(cursor):
    names = tuple(c.name for c in cursor.description or ())
    cls = _row_class(names)
    return cls


class _Cursor:
    """A psycopg cursor as the shared statements use sqlite3's (``row_factory = None``
    asks for plain tuples: ours already are)."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    row_factory = property(lambda self: None, lambda self, value: None)
    rowcount = property(lambda self: self._cursor.rowcount)

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    def fetchmany(self, size: int):
        return self._cursor.fetchmany(size)

    def __iter__(self):
        return self

    def __next__(self):
        row = self._cursor.fetchone()
        if row is None:
            raise StopIteration
        return row


class Connection:
    """A pooled psycopg connection speaking the shared statements (SQLite dialect)."""

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw
        self.wrote = False

    def execute(self, sql: str, args=()) -> _Cursor:
        if not sql.lstrip()[:6].upper() == "SELECT":
            self.wrote = True
        return _Cursor(self.raw.execute(to_postgres(sql), tuple(args)))

    def executemany(self, sql: str, rows) -> _Cursor:
        self.wrote = True
        cur = self.raw.cursor()
        cur.executemany(to_postgres(sql), [tuple(r) for r in rows])
        return _Cursor(cur)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


class _Autocommit:
    """``store.conn`` outside a transaction: each statement on its own."""

    def __init__(self, store: "PostgresStore") -> None:
        self._store = store

    def execute(self, sql: str, args=()) -> _Cursor:
        with self._store.reading() as conn:
            return conn.execute(sql, args)

    def executemany(self, sql: str, rows) -> _Cursor:
        with self._store.reading() as conn:
            return conn.executemany(sql, rows)


class PostgresStore(SQLiteStore):
    """One PostgreSQL database (see the module docstring). The read methods are
    SQLiteStore's; the plumbing below is PostgreSQL's."""

    def __init__(self, url: str, busy_timeout_ms: int = 15000, max_connections: int = 24,
                 connect_timeout: float = 10.0) -> None:
        # 24: the daemon's 16 workers, its feeder, lease keeper, deadline and renewal jobs
        # and the metrics endpoint each pin one at a time
        self.url = url
        self._borrowed = False
        self.path = redact(url)
        self._local = threading.local()
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError("store.url", f"store.url is not a PostgreSQL URL: "
                              f"{str(exc).splitlines()[0]}") from None
        lock_timeout = int(busy_timeout_ms)

        def configure(conn: psycopg.Connection) -> None:
            conn.execute("SET synchronous_commit = on")
            conn.execute(f"SET lock_timeout = {lock_timeout}")
            conn.execute("SET application_name = 'certflow'")

        self.pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max_connections, open=False, configure=configure,
            check=psycopg_pool.ConnectionPool.check_connection, timeout=connect_timeout,
            kwargs={"autocommit": True, "row_factory": row_factory,
                    "connect_timeout": max(1, int(connect_timeout))})
        try:
            self.pool.open(wait=True, timeout=connect_timeout)
        except psycopg_pool.PoolTimeout:
            self.pool.close()
            raise StoreUnavailable("unreachable", self.path) from None
        try:
            self.migrate()
        except BaseException:
            self.pool.close()
            raise

    # --- plumbing --------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> BaseException:
        condition = condition_of(exc)
        return StoreUnavailable(condition, self.path) if condition else exc

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """The thread's connection of the moment (inside a transaction or snapshot), or
        one from the pool for the block; psycopg errors mapped."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        try:
            with self.pool.connection() as raw:
                yield Connection(raw)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        except psycopg_pool.PoolTimeout:
            raise StoreUnavailable("unreachable", self.path) from None

    @property
    def conn(self):
        """The connection of the current transaction or snapshot; outside them, one that
        runs each statement on a pooled connection in autocommit (tools and tests)."""
        pinned = getattr(self._local, "conn", None)
        return pinned if pinned is not None else _Autocommit(self)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._connection() as conn:
            try:
                yield conn
            except psycopg.Error as exc:
                raise self._unavailable(exc) from None

    @contextmanager
    def _pinned(self, begin: str) -> Iterator[Connection]:
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("a transaction is already open on this thread")
        with self._connection() as conn:
            try:
                conn.raw.execute(begin)
                self._local.conn = conn
                yield conn
                if conn.wrote:
                    conn.raw.execute(f"NOTIFY {CHANNEL}")
                conn.raw.execute("COMMIT")
            except BaseException as exc:
                self._local.conn = None
                try:
                    if not conn.raw.closed and conn.in_transaction:
                        conn.raw.execute("ROLLBACK")
                except psycopg.Error:
                    pass  # the connection is gone: the server rolled back
                if isinstance(exc, psycopg.Error):
                    raise self._unavailable(exc) from None
                raise
            finally:
                self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        with self._pinned("BEGIN") as conn:
            yield PostgresTransaction(conn)

    @contextmanager
    def snapshot(self) -> Iterator["PostgresStore"]:
        with self._pinned("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"):
            yield self

    def close(self) -> None:
        if not self._borrowed:
            self.pool.close()

    def another(self, synchronous: str | None = None) -> "PostgresStore":
        """The same pool for a worker thread: each transaction already pins a pooled
        connection to its thread. Closing it leaves the pool to its owner.
        (``synchronous`` is SQLite's: synchronous_commit stays on here.)"""
        other = copy.copy(self)
        other._borrowed = True
        return other

    # --- schema ----------------------------------------------------------------------

    def schema_version(self) -> int:
        with self.reading() as conn:
            if conn.raw.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
                return 0
            return conn.raw.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0

    def migration_names(self) -> list[str]:
        with self.reading() as conn:
            if conn.raw.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
                return []
            return [r[0] for r in conn.raw.execute("SELECT name FROM schema_version "
                                                   "ORDER BY version")]

    def migrate(self) -> None:
        """The PostgreSQL twins of the named migrations not yet recorded, each in its own
        transaction under an advisory lock (daemons starting together migrate once)."""
        newest = self.schema_version()
        if newest > SCHEMA_VERSION:
            raise ConfigError("store.url", f"database schema version {newest} is newer than this "
                              f"certflow ({SCHEMA_VERSION}); upgrade certflow", self.path)
        if newest == SCHEMA_VERSION:
            return
        assert [n for n, _ in pg_migrations()] == [n for n, _ in MIGRATIONS]
        for number, (name, statements) in enumerate(pg_migrations(), start=1):
            with self._pinned("BEGIN") as conn:
                raw = conn.raw
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY "
                            "KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
                if raw.execute("SELECT 1 FROM schema_version WHERE name = %s",
                               (name,)).fetchone():
                    continue  # another process applied it meanwhile
                for statement in statements:
                    raw.execute(statement)
                raw.execute("INSERT INTO schema_version VALUES (%s, %s, to_char(now() AT TIME "
                            "ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))", (number, name))

    def server_version(self) -> str:
        with self.reading() as conn:
            return conn.raw.execute("SHOW server_version").fetchone()[0]

    # --- the daemon's watcher --------------------------------------------------------

    def commit_counter(self):
        """A callable returning a number that changes when another process commits (the
        NOTIFYs it LISTENs for on a connection of its own; it waits up to 1 s for one
        rather than polling the database), and its close function."""
        state = {"conn": None, "count": 0}

        def listen():
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            conn.execute(f"LISTEN {CHANNEL}")
            state["conn"] = conn
            state["count"] += 1  # reconnected: something may have been missed

        def counter() -> int | None:
            try:
                if state["conn"] is None or state["conn"].closed:
                    listen()
                for _ in state["conn"].notifies(timeout=1.0, stop_after=1):
                    state["count"] += 1
                return state["count"]
            except psycopg.Error:
                state["conn"] = None  # the server went away: connect again next time
                return None

        def close() -> None:
            if state["conn"] is not None:
                state["conn"].close()
        return counter, close


def inspect(url: str, final_states: tuple[str, ...] = ()) -> dict:
    """Read-only look at a PostgreSQL store for ``doctor`` (no migration, no pool):
    server version, schema version and names, orders, in-flight orders per contract.
    Raises StoreUnavailable when the server cannot be reached."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET default_transaction_read_only = on")
            server = conn.execute("SHOW server_version").fetchone()[0]
            names = []
            if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is not None:
                names = [r[0] for r in conn.execute("SELECT name FROM schema_version "
                                                    "ORDER BY version")]
            orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0] if names else 0
            in_flight = conn.execute(
                to_postgres("SELECT contract, count(*) FROM orders WHERE state NOT IN (%s) "
                            "GROUP BY contract" % ",".join("?" * len(final_states))),
                final_states).fetchall() if names and final_states else []
    except psycopg.Error as exc:
        if condition_of(exc):
            raise StoreUnavailable(condition_of(exc), redact(url)) from None
        raise
    return {"server": server, "version": len(names), "names": names, "orders": orders,
            "in_flight": in_flight}
