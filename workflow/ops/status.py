"""The operator's summary behind ``certflow status`` (reads only: no write lock)."""
from __future__ import annotations

from workflow.effects.deadlines import upcoming


def summary(engine) -> dict:
    lifecycle = engine.lifecycle
    s = engine.store.summary(lifecycle.hold_state)
    states = {name: s["counts"].get(name, 0) for name in lifecycle.state_names
              if name != lifecycle.initial}
    return {"states": states, "on_hold": s["on_hold"], "deadlines_48h": upcoming(engine, 48),
            "failed_effects": s["failed_effects"], "pending_effects": s["pending_effects"]}
