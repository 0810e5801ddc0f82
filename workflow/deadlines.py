"""Deadlines: fire each due order's deadline trigger (10-day approval expiry → ``expire``).

The sweep reads due rows through the ``deadline_at`` index and fires them in batches,
one transaction per batch, so a missed sweep (daemon down, machine asleep) fires late
rather than never.
"""
from __future__ import annotations

from workflow.clock import iso
from workflow.errors import InvalidTransition

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
    while True:
        with engine.store.immediate() as conn:
            rows = conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE deadline_at <= ? "
                                "ORDER BY deadline_at LIMIT ?", (stamp, batch)).fetchall()
            for row in rows:
                row = dict(row)
                trigger = row["deadline_trigger"]
                try:
                    engine.apply(conn, row, trigger, {"reason": _REASONS.get(trigger, f"deadline: {trigger}")},
                                 "deadline", now)
                    fired += 1
                except InvalidTransition:
                    # the lifecycle no longer allows it from here: stop asking every sweep
                    conn.execute("UPDATE orders SET deadline_at = NULL, deadline_trigger = NULL "
                                 "WHERE id = ?", (row["id"],))
        if len(rows) < batch:
            break
    if fired:
        engine._committed()
    return fired


def upcoming(engine, hours: float = 48) -> list[dict]:
    from datetime import timedelta
    now = engine.now()
    return [dict(r) for r in engine.store.conn.execute(
        "SELECT id, state, common_name, deadline_at, deadline_trigger FROM orders "
        "WHERE deadline_at IS NOT NULL AND deadline_at <= ? ORDER BY deadline_at",
        (iso(now + timedelta(hours=hours)),))]
