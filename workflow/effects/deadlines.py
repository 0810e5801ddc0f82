"""Deadlines: fire each due order's deadline trigger (10-day approval expiry → ``expire``,
the customer's CSR that never came → ``cancel``).

The sweep reads due rows through the ``deadline_at`` index and fires them in batches,
one transaction per batch, so a missed sweep (daemon down, machine asleep) fires late
rather than never, and 10,000 due orders cost a few transactions, not 10,000. When an
order cannot move (a bug, bad data), its batch is rolled back and done again with one
savepoint per order, so that order is logged and skipped without holding back the others. Reminders before a deadline are outbox rows
with a ``next_at`` (queued by the engine on entering the state), so the dispatcher sends
them and drops them once the order has moved on.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from workflow.clock import iso
from workflow.errors import InvalidTransition

log = logging.getLogger("certflow.deadlines")

_REASONS = {
    "expire": "the domain administrator did not approve within 10 days",
    "cancel": "the customer's CSR did not arrive before the deadline",
}


def sweep(engine, batch: int = 2000) -> int:
    """Fire every deadline due now; return how many orders moved."""
    from workflow.engine import _ORDER_COLUMNS
    now = engine.now()
    stamp = iso(now)
    fired = 0
    broken: set[str] = set()  # orders that failed this sweep: not asked again until the next
    while True:
        careful = False
        while True:
            try:
                with engine.store.immediate() as conn:
                    rows = [dict(r) for r in conn.execute(
                        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE deadline_at <= ? "
                        "ORDER BY deadline_at LIMIT ?", (stamp, batch + len(broken)))
                        if r["id"] not in broken][:batch]
                    moved = sum(_fire(engine, conn, row, now, broken if careful else None)
                                for row in rows)
                break
            except Exception:
                if careful:
                    raise
                careful = True  # the batch was rolled back: again, one savepoint per order
        fired += moved
        if len(rows) < batch:
            break
    if fired:
        engine._committed()
    return fired


def _fire(engine, conn, row: dict, now, broken: set[str] | None) -> int:
    """Fire one order's deadline. Fast path (``broken`` None): any failure but a refused
    transition (which writes nothing) aborts the batch; careful path: the order's own
    savepoint is rolled back and the order skipped for the rest of this sweep."""
    trigger = row["deadline_trigger"]
    if broken is not None:
        conn.execute("SAVEPOINT deadline")
    try:
        engine.apply(conn, row, trigger, {"reason": _REASONS.get(trigger, f"deadline: {trigger}")},
                     "deadline", now)
        return 1
    except InvalidTransition:
        # the lifecycle no longer allows it from here: stop asking every sweep
        conn.execute("UPDATE orders SET deadline_at = NULL, deadline_trigger = NULL WHERE id = ?",
                     (row["id"],))
        return 0
    except Exception:
        if broken is None:
            raise
        conn.execute("ROLLBACK TO deadline")
        broken.add(row["id"])
        log.exception("deadline %s of order %s could not fire; skipped this sweep",
                      trigger, row["id"])
        return 0
    finally:
        if broken is not None:
            conn.execute("RELEASE deadline")


def upcoming(engine, hours: float = 48) -> list[dict]:
    """Orders whose deadline falls within the next ``hours`` (``certflow status``)."""
    now = engine.now()
    return [dict(r) for r in engine.store.conn.execute(
        "SELECT id, state, common_name, deadline_at, deadline_trigger FROM orders "
        "WHERE deadline_at IS NOT NULL AND deadline_at <= ? ORDER BY deadline_at",
        (iso(now + timedelta(hours=hours)),))]
