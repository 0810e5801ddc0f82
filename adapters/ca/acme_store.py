"""What the ACME adapter keeps on disk so a restart resumes instead of starting over.

Layout of ``state_dir`` (created 0700, files 0600)::

    account.key.sealed   the account private key (PEM), sealed by the engine's key vault
    account.json         {"directory": URL, "url": account URL}
    account.lock         flock: one process creates the account, the others wait and reuse it
    orders-NN.lock       flock, 64 stripes by the order's names: one process creates the ACME
                         order for an idempotency key (and looks for a lost one for the same
                         names); orders for other names are made meanwhile
    acme.db              SQLite (WAL): orders by idempotency key, new-orders sent (intents),
                         challenges already answered

The account key is written before the account is registered, so a crash in between
finds the key again and asks the CA for the existing account instead of making a new one.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterator

from adapters.common.files import write_atomic
from adapters.common.sqlite_tx import immediate, sqlite_edge, use_wal
from adapters.common.utc import from_text, to_text
from adapters.base import PermanentError

#: new-orders for names in different stripes are made at once
ORDER_LOCK_STRIPES = 64

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS orders (
        idempotency_key TEXT PRIMARY KEY,
        order_url TEXT NOT NULL UNIQUE,
        names TEXT NOT NULL,
        csr_pem TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    # a new-order about to be sent: if its reply is lost (crash, timeout), the retry looks
    # for the order among the account's orders instead of making a second one
    """CREATE TABLE IF NOT EXISTS intents (
        idempotency_key TEXT PRIMARY KEY,
        names TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS answered (
        challenge_url TEXT PRIMARY KEY,
        order_url TEXT NOT NULL,
        answered_at TEXT NOT NULL
    )""",
    # the CA's renewal advice per certificate (RFC 9773 CertID), kept until it says to ask again
    """CREATE TABLE IF NOT EXISTS renewal_advice (
        cert_id TEXT PRIMARY KEY,
        renew_at TEXT,
        ask_again_at TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class OrderRecord:
    """The ACME order made for one idempotency key."""

    idempotency_key: str
    order_url: str
    names: tuple[str, ...]
    csr_pem: str


class AcmeStore:
    """Account files and the order table of one ACME adapter instance."""

    def __init__(self, state_dir: str, seal: Callable[[bytes], bytes],
                 unseal: Callable[[bytes], bytes], clock: Callable[[], datetime]) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self._seal = seal
        self._unseal = unseal
        self._clock = clock
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise PermanentError(f"cannot create ACME state_dir {self.state_dir}: {exc.strerror}",
                                 path=self.state_dir) from exc
        self._db_path = os.path.join(self.state_dir, "acme.db")
        with self._transaction() as db:
            for statement in SCHEMA:
                db.execute(statement)
            _restrict(self._db_path)  # while open, so the -wal and -shm files exist too

    def __repr__(self) -> str:
        return f"AcmeStore({self.state_dir!r})"

    # --- locks --------------------------------------------------------------------

    @contextlib.contextmanager
    def account_lock(self) -> Iterator[None]:
        """Held while the account is looked up or created (across processes)."""
        with self._flock("account.lock"):
            yield

    @contextlib.contextmanager
    def order_lock(self, names: tuple[str, ...]) -> Iterator[None]:
        """Held while an ACME order is created for ``names`` (across processes and threads:
        each holder opens the file itself). Striped by the names, so new-orders for other
        names go on meanwhile; the same names always share a stripe (a retry looking for
        its lost order never races another order's for the same names).

        flock is dropped by the kernel when its holder dies, so a kill -9 leaves no stale lock.
        """
        digest = hashlib.sha256("\n".join(sorted(names)).encode()).digest()
        with self._flock(f"orders-{digest[0] % ORDER_LOCK_STRIPES:02d}.lock"):
            yield

    @contextlib.contextmanager
    def _flock(self, name: str) -> Iterator[None]:
        fd = os.open(os.path.join(self.state_dir, name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # --- account ------------------------------------------------------------------

    def load_account_key(self) -> bytes | None:
        """The unsealed account key PEM, or None when none was made yet."""
        path = os.path.join(self.state_dir, "account.key.sealed")
        try:
            with open(path, "rb") as handle:
                sealed = handle.read()
        except FileNotFoundError:
            return None
        try:
            return self._unseal(sealed)
        except Exception as exc:  # the vault's own error types are not ours to know
            raise PermanentError(f"cannot unseal the ACME account key in {path}",
                                 path=path) from exc

    def save_account_key(self, key_pem: bytes) -> None:
        self._write("account.key.sealed", self._seal(key_pem))

    def load_account_url(self, directory: str) -> str | None:
        """The account URL registered at ``directory``, or None when not registered yet."""
        path = os.path.join(self.state_dir, "account.json")
        try:
            with open(path, "rb") as handle:
                data = json.loads(handle.read())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise PermanentError(f"unreadable ACME account file {path}", path=path) from exc
        if data.get("directory") != directory:
            raise PermanentError(
                f"ACME state_dir {self.state_dir} holds an account of another directory "
                f"({data.get('directory')}); use a separate state_dir per CA",
                path=self.state_dir, directory=directory, found=data.get("directory"))
        url = data.get("url")
        return url if isinstance(url, str) and url else None

    def save_account_url(self, directory: str, url: str) -> None:
        self._write("account.json", json.dumps({"directory": directory, "url": url}).encode())

    def _write(self, name: str, content: bytes) -> None:
        write_atomic(os.path.join(self.state_dir, name), content, 0o600)

    # --- orders -------------------------------------------------------------------

    def order_for(self, idempotency_key: str) -> OrderRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM orders WHERE idempotency_key = ?",
                             (idempotency_key,)).fetchone()
        return _record(row)

    def order_at(self, order_url: str) -> OrderRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM orders WHERE order_url = ?", (order_url,)).fetchone()
        return _record(row)

    def record_order(self, idempotency_key: str, order_url: str, names: tuple[str, ...],
                     csr_pem: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO orders (idempotency_key, order_url, names, csr_pem, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (idempotency_key, order_url, json.dumps(list(names)), csr_pem,
                 self._clock().isoformat()))

    def record_intent(self, idempotency_key: str, names: tuple[str, ...]) -> bool:
        """Note a new-order about to be sent; False when one was noted before (a retry)."""
        with self._transaction() as db:
            cur = db.execute("INSERT OR IGNORE INTO intents (idempotency_key, names, created_at) "
                             "VALUES (?, ?, ?)", (idempotency_key, json.dumps(list(names)),
                                                  self._clock().isoformat()))
        return cur.rowcount == 1

    def was_answered(self, challenge_url: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM answered WHERE challenge_url = ?",
                             (challenge_url,)).fetchone()
        return row is not None

    def record_answer(self, challenge_url: str, order_url: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO answered (challenge_url, order_url, answered_at)"
                       " VALUES (?, ?, ?)", (challenge_url, order_url, self._clock().isoformat()))

    # --- renewal advice -------------------------------------------------------------

    def renewal_advice(self, cert_id: str) -> tuple[datetime | None, datetime] | None:
        with self._connect() as db:
            row = db.execute("SELECT renew_at, ask_again_at FROM renewal_advice WHERE cert_id = ?",
                             (cert_id,)).fetchone()
        if row is None:
            return None
        return (from_text(row["renew_at"]), from_text(row["ask_again_at"]))

    def record_renewal_advice(self, cert_id: str, renew_at: datetime | None,
                              ask_again_at: datetime) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO renewal_advice VALUES (?, ?, ?)",
                       (cert_id, to_text(renew_at), to_text(ask_again_at)))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # a connection per call: the adapter is used from the daemon's worker threads
        with sqlite_edge(self._db_path):
            db = sqlite3.connect(self._db_path, timeout=30.0, isolation_level=None)
            try:
                db.row_factory = sqlite3.Row
                use_wal(db)
                db.execute("PRAGMA synchronous=FULL")
                yield db
            finally:
                db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db, immediate(db):
            yield db


def _restrict(db_path: str) -> None:
    """The database names CA URLs and CSRs only, but keep it as private as the key."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(db_path + suffix, 0o600)


def _record(row: sqlite3.Row | None) -> OrderRecord | None:
    if row is None:
        return None
    return OrderRecord(idempotency_key=row["idempotency_key"], order_url=row["order_url"],
                       names=tuple(json.loads(row["names"])), csr_pem=row["csr_pem"])
