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

Which due row is taken first, and how many of one kind at once:
:mod:`workflow.effects.priority`. While an effect runs its lease is renewed
(:mod:`workflow.effects.leases`). Every run ends in :meth:`Dispatcher.outcome`, the one
place where an effect's outcome (done, dropped, later, retry, failed) is seen. Many
workers (:mod:`workflow.effects.pool`) each run their own Dispatcher over their own
store connection and share one lease owner.

Retry schedule: :mod:`workflow.effects.retry`. A ``TransientError`` counts an attempt;
past ``max_attempts`` the order goes on_hold with the last error as its reason.
``PermanentError`` holds at once; ``Refused`` ends the order with the trigger it names
(reject or cancel). The store being busy, full or read-only (StoreUnavailable) is not
the effect's failure: the row keeps its lease until it lapses and runs again then.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import uuid
from datetime import timedelta

from adapters.base import AdapterError, BadInput, PermanentError, Refused, TransientError
from workflow.clock import iso
from workflow.effects import metrics, priority
from workflow.effects.leases import LeaseKeeper
from workflow.effects.outcome import EffectContext, Later, Outcome
from workflow.effects.retry import RetrySchedule
from workflow.errors import InvalidTransition, StoreUnavailable, ValidationError
from workflow.model import Order
from workflow.store.conflicts import retry_conflicts

log = logging.getLogger("certflow.effects")
HOST = socket.gethostname()


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
    def __init__(self, engine, handlers=None, owner: str | None = None,
                 leases: LeaseKeeper | None = None) -> None:
        from workflow.effects import handlers as default_handlers
        self.engine = engine
        self.handlers = handlers or default_handlers.HANDLERS
        self.owner = owner or f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        cfg = engine.config["effects"]
        self.retry_schedule = RetrySchedule.from_config(cfg)
        self.lease = timedelta(seconds=cfg["lease_seconds"])
        self.leases = leases or LeaseKeeper(engine, self.owner, self.lease)
        self.stopping = False

    # --- claiming -----------------------------------------------------------------

    @retry_conflicts
    def claim(self, limit: int = 16, exclude: set[int] | frozenset = frozenset(),
              limits: dict[str, int] | None = None,
              running: dict[str, int] | None = None) -> list[dict]:
        """Lease up to ``limit`` due rows to this worker, in dispatch order (further along
        the lifecycle first), each kind up to ``limits`` less what is ``running``: free
        rows, rows whose lease lapsed, rows whose holder is a dead process on this host."""
        now = self.engine.now()
        stamp = iso(now)
        # a cheap read first: an idle daemon does not take the write lock every poll
        if not self.engine.store.any_effect_due(stamp):
            return []
        wanted = priority.wanted(self.handlers, limit, limits or {}, running or {})
        if not wanted:  # every kind at its limit: a worker finishing looks again
            return []
        with self.engine.store.transaction() as tx:
            dead = [o for o in tx.lease_owners(stamp, self.owner) if not _owner_alive(o)]
            rows = tx.claim_effects(stamp, self.owner, iso(now + self.lease), wanted, limit,
                                    exclude, dead)
        for row in rows:
            if row["lease_owner"] in dead:
                log.info("taking over effect %s of order %s from dead worker %s", row["effect"],
                         row["order_id"], row["lease_owner"])
        return rows

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
                    self.release(row)
                    continue
                if self.run(row) == "later":
                    postponed.add(row["id"])
                done += 1
        return done

    def release(self, row: dict) -> None:
        """Hand a claimed row back unstarted (the daemon is stopping)."""
        with self.engine.store.transaction() as tx:
            tx.release(row["id"], self.owner)

    def context(self, row: dict, order) -> EffectContext:
        """What the handler of outbox ``row`` for ``order`` is given."""
        engine = self.engine
        return EffectContext(order=order, job=row, adapters=engine.adapters, clock=engine.clock,
                             config=engine.config, lifecycle=engine.lifecycle, keys=engine.keys,
                             records=engine.store, verify=engine.verified_certificate,
                             contracts=engine.contracts)

    def run(self, row: dict) -> str:
        """Run one claimed row to its end for now: done, dropped, later, retry, failed;
        its lease is kept alive meanwhile."""
        started = time.monotonic()
        with self.leases.holding(row["id"]):
            result = self._run(row)
        self.outcome(row, result, time.monotonic() - started)
        return result

    def outcome(self, row: dict, result: str, seconds: float) -> None:
        """The one place every effect's outcome passes: its log line and its counts."""
        metrics.record_outcome(row, result, seconds)

    def _run(self, row: dict) -> str:
        engine = self.engine
        record = engine.store.order(row["order_id"])
        if record is None:
            return self._finish(row, "dropped", note="order is gone")
        if row["bound"] and not _same_visit(row, record):
            return self._finish(row, "dropped", note=f"order moved on to {record['state']}")
        order = Order.from_record(record)
        handler = self.handlers.get(row["effect"])
        if handler is None:
            return self._fail(row, PermanentError(f"no handler for effect {row['effect']!r}"))
        try:
            result = handler(self.context(row, order))
        except StoreUnavailable:
            raise
        except Refused as exc:
            return self._finish(row, "done", trigger=exc.trigger or "reject",
                                data={"reason": exc.message})
        except TransientError as exc:
            return self._retry(row, exc)
        except (PermanentError, BadInput, ValidationError) as exc:
            return self._fail(row, exc)
        except (AdapterError, OSError) as exc:
            return self._retry(row, exc)
        except Exception as exc:  # a bug: keep the traceback in the log, retry like a transient
            log.error("effect %s of order %s crashed:\n%s", row["effect"], row["order_id"],
                      traceback.format_exc())
            return self._retry(row, exc)
        if isinstance(result, Later):
            when = engine.now() + timedelta(seconds=max(0.0, result.retry_after))
            # a "not yet" is scheduling, like a lease: written on the lease keeper's
            # connection (in the daemon's pool, one that does not wait for fsync: a
            # postponement lost to a power cut only makes the row due sooner)
            with self.leases.engine.store.transaction() as tx:
                tx.postpone(row["id"], iso(when), result.detail or None)
            return "later"
        outcome = result or Outcome()
        return self._finish(row, "done", trigger=outcome.trigger, data=outcome.data)

    @retry_conflicts  # the effect ran already: only its outcome's transaction runs again
    def _finish(self, row: dict, status: str, trigger: str | None = None, data: dict | None = None,
                note: str | None = None) -> str:
        """End the row and apply its outcome in one transaction, if it is still pending
        (two workers can never both apply an outcome)."""
        engine = self.engine
        now = engine.now()
        with engine.command() as tx:
            if not tx.effect_pending(row["id"]):
                return "dropped"  # another worker finished it meanwhile
            if trigger:
                order_row = engine.load(tx, row["order_id"])
                if row["bound"] and not _same_visit(row, order_row):
                    status, trigger = "dropped", None
                    note = f"order moved on to {order_row['state']} meanwhile"
            if trigger:
                try:  # a refused move writes nothing: the row still ends
                    engine.apply(tx, order_row, trigger, data or {}, f"effect:{row['effect']}", now)
                except InvalidTransition as exc:
                    note = f"outcome {trigger} not applied: {exc}"
            tx.end_effect(row["id"], status, iso(now), note)
        return status

    def _retry(self, row: dict, exc: Exception) -> str:
        attempts = row["attempts"] + 1
        schedule = self.retry_schedule
        if schedule.exhausted(attempts):
            return self._fail(row, exc, attempts)
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        when = self.engine.now() + schedule.delay(attempts, retry_after)
        with self.engine.store.transaction() as tx:
            tx.postpone(row["id"], iso(when), _describe(exc), attempts)
        log.warning("effect %s of order %s failed (attempt %d/%d), retry at %s: %s", row["effect"],
                    row["order_id"], attempts, schedule.max_attempts, iso(when), _describe(exc))
        return "retry"

    def _fail(self, row: dict, exc: Exception, attempts: int | None = None) -> str:
        """Give up on the row; hold the order when the work was the order's own step."""
        reason = f"{row['effect']} failed: {_describe(exc)}"
        engine = self.engine
        lifecycle = engine.lifecycle
        with engine.command() as tx:
            if not tx.end_effect(row["id"], "failed", iso(engine.now()), reason,
                                 attempts or row["attempts"] + 1):
                return "dropped"  # another worker finished it meanwhile
            order_row = engine.load(tx, row["order_id"])
            if row["bound"] and order_row["state"] in lifecycle.holdable \
                    and _same_visit(row, order_row):
                engine.apply(tx, order_row, lifecycle.hold_trigger, {"reason": reason},
                             f"effect:{row['effect']}", engine.now())
        log.error("order %s: %s", row["order_id"], reason)
        return "failed"


def _same_visit(row: dict, order_row: dict) -> bool:
    """Is the order still in the state (and the same visit of it) that queued the row?"""
    return order_row["state"] == row["state"] and order_row["entered_seq"] == row["seq"]


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:500]
