"""The outbox dispatcher: effects run after commit, at least once, never applied twice.

A row is claimed with a lease (``lease_owner`` = ``host:pid:random``, ``lease_until``);
a worker that died holding one loses it when the lease lapses, or at once when it ran on
this host and its process is gone (or a zombie nobody reaped). After claiming, the
dispatcher checks again that the order still needs the work (same state, same visit of
it); a row whose order moved on is ``dropped``. The adapter call happens outside any
transaction with the row's idempotency key, so a re-run after a crash repeats nothing
outside; its outcome comes back as a trigger, committed in one transaction with the
row's completion, and only if the row is still pending then: two workers can never both
apply an outcome.

Retry schedule (``[effects]``): attempt n waits ``backoff_seconds * 2**(n-1)``, plus up to
25 % jitter so a fleet of failed orders does not retry in step, capped at six hours. A
``TransientError`` counts an attempt; past ``max_attempts`` the order goes on_hold with
the last error as its reason. ``PermanentError`` holds at once; ``Refused`` ends the order
with the trigger it names (reject or cancel).
"""
from __future__ import annotations

import logging
import os
import random
import socket
import sqlite3
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from adapters.base import AdapterError, BadInput, PermanentError, Refused, TransientError
from workflow.clock import iso
from workflow.errors import CertflowError, ConcurrencyError, InvalidTransition, ValidationError

log = logging.getLogger("certflow.effects")
MAX_BACKOFF = timedelta(hours=6)
HOST = socket.gethostname()


@dataclass(frozen=True)
class Outcome:
    """The effect is done; fire ``trigger`` (if any) with ``data`` on the order."""

    trigger: str | None = None
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Later:
    """Not done yet and not a failure (a CA still validating): look again later."""

    seconds: float
    detail: str = ""


def _owner_alive(owner: str | None) -> bool:
    """Is the process that holds a lease still there? Unknown hosts count as alive."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    if host != HOST:
        return True
    try:
        pid = int(rest.split(":")[0])
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers kill(pid, 0)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False


class Dispatcher:
    def __init__(self, engine, handlers=None) -> None:
        from workflow.effects import handlers as default_handlers
        self.engine = engine
        self.handlers = handlers or default_handlers.HANDLERS
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        cfg = engine.config["effects"]
        self.max_attempts = cfg["max_attempts"]
        self.backoff = cfg["backoff_seconds"]
        self.lease = timedelta(seconds=cfg["lease_seconds"])
        self.stopping = False

    # --- claiming -----------------------------------------------------------------

    def claim(self, limit: int = 16, exclude: set[int] | frozenset = frozenset()) -> list[dict]:
        """Lease up to ``limit`` due rows to this worker: free rows first, then rows whose
        lease lapsed or whose holder is a dead process on this host."""
        now = self.engine.now()
        stamp = iso(now)
        conn = self.engine.store.conn
        # a cheap read first: an idle daemon does not take the write lock every poll
        if conn.execute("SELECT 1 FROM outbox WHERE status = 'pending' AND next_at <= ? LIMIT 1",
                        (stamp,)).fetchone() is None:
            return []
        with self.engine.store.immediate() as conn:
            rows = [dict(r) for r in conn.execute(
                "SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? "
                "AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_at, id LIMIT ?",
                (stamp, stamp, limit + len(exclude))) if r["id"] not in exclude][:limit]
            if len(rows) < limit:
                rows += self._orphans(conn, stamp, limit - len(rows), exclude)
            until = iso(now + self.lease)
            conn.executemany("UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?",
                             [(self.owner, until, row["id"]) for row in rows])
        return rows

    def _orphans(self, conn: sqlite3.Connection, stamp: str, limit: int, skip) -> list[dict]:
        """Due rows still leased by a worker that is gone (killed, crashed) on this host."""
        dead = [owner for (owner,) in conn.execute(
            "SELECT DISTINCT lease_owner FROM outbox WHERE status = 'pending' AND next_at <= ? "
            "AND lease_until > ? AND lease_owner != ?", (stamp, stamp, self.owner))
            if not _owner_alive(owner)]
        if not dead:
            return []
        rows = [dict(r) for r in conn.execute(
            f"SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? AND lease_until > ? "
            f"AND lease_owner IN ({', '.join('?' * len(dead))}) ORDER BY next_at, id",
            (stamp, stamp, *dead)) if r["id"] not in skip]
        for row in rows[:limit]:
            log.info("taking over effect %s of order %s from dead worker %s", row["effect"],
                     row["order_id"], row["lease_owner"])
        return rows[:limit]

    # --- running ------------------------------------------------------------------

    def drain(self, max_rounds: int = 10000) -> int:
        """Run every effect due now (and those they make due now); return how many ran.

        An effect that asked to be looked at later is not taken again in the same drain,
        so ``daemon --once`` always ends."""
        done = 0
        postponed: set[int] = set()
        for _ in range(max_rounds):
            if self.stopping:
                break
            rows = self.claim(exclude=postponed)
            if not rows:
                break
            for row in rows:
                if self.stopping:
                    self._release(row)
                    continue
                if self.run(row) == "later":
                    postponed.add(row["id"])
                done += 1
        return done

    def _release(self, row: dict) -> None:
        with self.engine.store.immediate() as conn:
            conn.execute("UPDATE outbox SET lease_owner = NULL, lease_until = NULL "
                         "WHERE id = ? AND lease_owner = ?", (row["id"], self.owner))

    def run(self, row: dict) -> str:
        """Run one claimed row to its end for now: done, dropped, later, retry, failed."""
        engine = self.engine
        try:
            order = engine.get(row["order_id"])
        except CertflowError:
            return self._finish(row, "dropped", note="order is gone")
        if row["bound"] and not self._still_needed(row, engine.store.conn.execute(
                "SELECT state, entered_seq FROM orders WHERE id = ?", (order.id,)).fetchone()):
            return self._finish(row, "dropped", note=f"order moved on to {order.state}")
        handler = self.handlers.get(row["effect"])
        if handler is None:
            return self._fail(row, order, PermanentError(f"no handler for effect {row['effect']!r}"))
        try:
            result = handler(engine, row, order)
        except Refused as exc:
            return self._finish(row, "done", trigger=exc.trigger or "reject",
                                data={"reason": exc.message})
        except TransientError as exc:
            return self._retry(row, order, exc)
        except (PermanentError, BadInput, ValidationError) as exc:
            return self._fail(row, order, exc)
        except (AdapterError, OSError) as exc:
            return self._retry(row, order, exc)
        except Exception as exc:  # a bug: keep the traceback in the log, retry like a transient
            log.error("effect %s of order %s crashed:\n%s", row["effect"], row["order_id"],
                      traceback.format_exc())
            return self._retry(row, order, exc)
        if isinstance(result, Later):
            when = engine.now() + timedelta(seconds=max(0.0, result.seconds))
            with engine.store.immediate() as conn:
                conn.execute("UPDATE outbox SET next_at = ?, lease_owner = NULL, lease_until = NULL, "
                             "last_error = ? WHERE id = ? AND status = 'pending'",
                             (iso(when), result.detail or None, row["id"]))
            return "later"
        outcome = result or Outcome()
        return self._finish(row, "done", trigger=outcome.trigger, data=outcome.data)

    @staticmethod
    def _still_needed(row: dict, order_row) -> bool:
        """Is the order still in the state (and the same visit of it) that queued the row?"""
        return order_row["state"] == row["state"] and order_row["entered_seq"] == row["seq"]

    def _finish(self, row: dict, status: str, trigger: str | None = None, data: dict | None = None,
                note: str | None = None) -> str:
        engine = self.engine
        now = engine.now()
        for _ in range(3):
            try:
                with engine.store.immediate() as conn:
                    current = conn.execute("SELECT status FROM outbox WHERE id = ?", (row["id"],)).fetchone()
                    if current is None or current[0] != "pending":
                        return "dropped"  # another worker finished it meanwhile
                    if trigger:
                        order_row = engine._load(conn, row["order_id"])
                        if row["bound"] and not self._still_needed(row, order_row):
                            status, trigger = "dropped", None
                            note = f"order moved on to {order_row['state']} meanwhile"
                    if trigger:
                        try:
                            engine.apply(conn, order_row, trigger, data or {}, f"effect:{row['effect']}", now)
                        except InvalidTransition as exc:
                            note = f"outcome {trigger} not applied: {exc}"
                    conn.execute("UPDATE outbox SET status = ?, done_at = ?, lease_owner = NULL, "
                                 "lease_until = NULL, last_error = COALESCE(?, last_error) WHERE id = ?",
                                 (status, iso(now), note, row["id"]))
                break
            except ConcurrencyError:
                continue
        if trigger:
            engine._committed()
        return status

    def _retry(self, row: dict, order, exc: Exception) -> str:
        attempts = row["attempts"] + 1
        if attempts >= self.max_attempts:
            return self._fail(row, order, exc, attempts)
        delay = timedelta(seconds=self.backoff * 2 ** (attempts - 1) * (1 + random.random() / 4))
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        if retry_after:
            delay = max(delay, timedelta(seconds=float(retry_after)))
        when = self.engine.now() + min(delay, MAX_BACKOFF)
        with self.engine.store.immediate() as conn:
            conn.execute("UPDATE outbox SET attempts = ?, next_at = ?, last_error = ?, lease_owner = NULL, "
                         "lease_until = NULL WHERE id = ? AND status = 'pending'",
                         (attempts, iso(when), _describe(exc), row["id"]))
        log.warning("effect %s of order %s failed (attempt %d/%d), retry at %s: %s", row["effect"],
                    row["order_id"], attempts, self.max_attempts, iso(when), _describe(exc))
        return "retry"

    def _fail(self, row: dict, order, exc: Exception, attempts: int | None = None) -> str:
        """Give up on the row; hold the order when the work was the order's own step."""
        reason = f"{row['effect']} failed: {_describe(exc)}"
        engine = self.engine
        with engine.store.immediate() as conn:
            cur = conn.execute("UPDATE outbox SET status = 'failed', attempts = ?, last_error = ?, "
                               "done_at = ?, lease_owner = NULL, lease_until = NULL "
                               "WHERE id = ? AND status = 'pending'",
                               (attempts or row["attempts"] + 1, reason, iso(engine.now()), row["id"]))
            if cur.rowcount != 1:
                return "dropped"  # another worker finished it meanwhile
            order_row = engine._load(conn, row["order_id"])
            if row["bound"] and order_row["state"] in engine.lifecycle.holdable \
                    and self._still_needed(row, order_row):
                engine.apply(conn, order_row, "hold", {"reason": reason}, f"effect:{row['effect']}",
                             engine.now())
        engine._committed()
        log.error("order %s: %s", row["order_id"], reason)
        return "failed"


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:500]
