"""Persistence: every SQL statement certflow runs lives in this package.

``base`` is the interface the engine uses; ``sqlite`` the SQLite implementation,
``transaction`` its writes, ``schema`` its tables and migrations. ``postgres`` runs the
same statements on PostgreSQL (``dialect`` translates them, ``postgres_tx`` holds the few
twins, ``postgres_schema`` derives the migrations); ``copy`` moves a SQLite store there.
"""
from workflow.store.base import Store, Transaction
from workflow.store.sqlite import SQLiteStore


def open_store(path: str, synchronous: str = "full", busy_timeout_ms: int = 15000,
               url: str | None = None) -> Store:
    """The store for ``[store]`` of config.toml: PostgreSQL when ``url`` is set, else the
    SQLite file at ``path``."""
    if url:
        from workflow.store.postgres import PostgresStore  # psycopg only when asked for
        return PostgresStore(url, busy_timeout_ms)
    return SQLiteStore(path, synchronous, busy_timeout_ms)


__all__ = ["Store", "Transaction", "SQLiteStore", "open_store"]
