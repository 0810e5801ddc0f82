"""The operator's summary behind ``certflow status``."""
from __future__ import annotations

from workflow.effects.deadlines import upcoming


def summary(engine) -> dict:
    conn = engine.store.conn
    counts = dict(conn.execute("SELECT state, count(*) FROM orders GROUP BY state").fetchall())
    states = {s: counts.get(s, 0) for s in engine.lifecycle.state_names if s != engine.lifecycle.initial}
    on_hold = [dict(r) for r in conn.execute(
        "SELECT id, common_name, reason, updated_at FROM orders WHERE state = 'on_hold' ORDER BY updated_at")]
    failed = [dict(r) for r in conn.execute(
        "SELECT order_id, effect, param, attempts, last_error, done_at FROM outbox WHERE status = 'failed' "
        "ORDER BY done_at DESC LIMIT 100")]
    pending = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    return {"states": states, "on_hold": on_hold, "deadlines_48h": upcoming(engine, 48),
            "failed_effects": failed, "pending_effects": pending}
