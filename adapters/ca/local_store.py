"""The embedded CA's records: applications and approval tokens in SQLite (``ca.db``).

WAL, ``synchronous=FULL``, one short ``BEGIN IMMEDIATE`` transaction per operation and a
connection per call, so several processes (CLI, daemon) and threads may share the file.
Approval tokens are stored as their SHA-256 hash only.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator

from adapters.common.sqlite_tx import immediate, sqlite_edge, use_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS applications (
    application_id    TEXT PRIMARY KEY,
    idempotency_key   TEXT NOT NULL UNIQUE,
    order_id          TEXT NOT NULL,
    common_name       TEXT NOT NULL,
    names             TEXT NOT NULL,           -- JSON list
    validation        TEXT NOT NULL,
    approver          TEXT,
    status            TEXT NOT NULL,           -- pending | approved | issued | cancelled
    created_at        TEXT NOT NULL,
    csr_pem           TEXT NOT NULL,
    not_after         TEXT,                    -- requested expiry (the dated policy's)
    challenge_name    TEXT,                    -- file validation
    challenge_content TEXT,
    token_nonce       TEXT,                    -- mail validation: the token is derived from it
    mail_sent_at      TEXT,
    mail_claim        TEXT,                    -- which worker is sending the approval mail
    mail_claimed_at   TEXT,
    certificate_pem   TEXT,
    serial            TEXT,
    issued_at         TEXT,
    cancelled_at      TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash      TEXT PRIMARY KEY,          -- sha256 hex of the token, never the token
    application_id  TEXT NOT NULL REFERENCES applications(application_id),
    expires_at      TEXT NOT NULL,
    used_at         TEXT
);
CREATE INDEX IF NOT EXISTS tokens_by_application ON tokens(application_id);
CREATE TABLE IF NOT EXISTS revocations (
    serial      TEXT PRIMARY KEY,              -- as applications.serial
    reason      TEXT NOT NULL,                 -- RFC 5280 reason name
    revoked_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS applications_by_serial ON applications(serial);
"""

BUSY_TIMEOUT_MS = 60_000


class CAStore:
    """Opens ``ca.db`` and hands out write transactions."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def create(self) -> None:
        """Create the file and tables if missing (safe to run from two processes at once)."""
        with sqlite_edge(self.path):
            db = self._connect()
            try:
                use_wal(db)
                db.execute("BEGIN IMMEDIATE")
                # statement by statement: executescript() would commit the open transaction
                # (the schema's comments hold no semicolon)
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("COMMIT")
            finally:
                db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
        with sqlite_edge(self.path):
            db = self._connect()
            try:
                with immediate(db):
                    yield db
            finally:
                db.close()

    def read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with sqlite_edge(self.path):
            db = self._connect()
            try:
                return db.execute(sql, params).fetchall()
            finally:
                db.close()
