"""Deadlines: fire each due order's deadline trigger (the approval expiry → ``expire``,
the customer's CSR that never came → ``cancel``), with the reason states/ gives it.

The sweep reads due rows through the ``deadline_at`` index and fires them in batches,
one transaction per batch, so a missed sweep (daemon down, machine asleep) fires late
rather than never, and 10,000 due orders cost a few transactions, not 10,000. When an
order cannot move (a bug, bad data), its batch is rolled back and done again with one
savepoint per order, so that order is logged and skipped without holding back the
others. Reminders before a deadline are outbox rows with a ``next_at`` (queued on
entering the state), so the dispatcher sends them and drops them once the order has
moved on.
"""
from __future__ import annotations

import logging

from workflow.clock import iso
from workflow.errors import InvalidTransition, StoreUnavailable
from workflow.store.conflicts import retry_conflicts

log = logging.getLogger("certflow.deadlines")


@retry_conflicts
def sweep(engine, batch: int = 2000) -> int:
    """Fire every deadline due now; return how many orders moved."""
    now = engine.now()
    stamp = iso(now)
    fired = 0
    broken: set[str] = set()  # orders that failed this sweep: not asked again until the next
    while True:
        careful = False
        while True:
            try:
                with engine.command() as tx:
                    rows = tx.due_deadlines(stamp, batch, broken)
                    moved = sum(_fire(engine, tx, row, now, broken if careful else None)
                                for row in rows)
                break
            except StoreUnavailable:
                raise
            except Exception:
                if careful:
                    raise
                careful = True  # the batch was rolled back: again, one savepoint per order
        fired += moved
        if len(rows) < batch:
            break
    return fired


def _fire(engine, tx, row: dict, now, broken: set[str] | None) -> int:
    """Fire one order's deadline. Fast path (``broken`` None): any failure but a refused
    transition (which writes nothing) aborts the batch; careful path: the order's own
    savepoint is rolled back and the order skipped for the rest of this sweep."""
    trigger = row["deadline_trigger"]
    reason = engine.lifecycle.deadline_reason(trigger, row["state"])
    try:
        if broken is None:
            engine.apply(tx, row, trigger, {"reason": reason}, "deadline", now)
        else:
            with tx.savepoint("deadline"):
                engine.apply(tx, row, trigger, {"reason": reason}, "deadline", now)
        return 1
    except InvalidTransition:
        # the lifecycle no longer allows it from here: stop asking every sweep
        tx.clear_deadline(row["id"])
        return 0
    except StoreUnavailable:
        raise
    except Exception:
        if broken is None:
            raise
        broken.add(row["id"])
        log.exception("deadline %s of order %s could not fire; skipped this sweep",
                      trigger, row["id"])
        return 0
