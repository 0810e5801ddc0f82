"""One live certificate per site (a common name on a hosting contract).

- A second order for a site while one is in flight is refused, naming that order;
  a renewal is exempt (it is meant to overlap its predecessor).
- When a renewal becomes live (its final state is one the ``supersede`` trigger leaves,
  ``installed`` or ``delivered``), the order it renews becomes ``superseded`` in the same
  transaction, with ``superseded_by`` in its data: it is not renewed again.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime

from workflow.errors import InvalidTransition, ValidationError

log = logging.getLogger("certflow.sites")


def in_flight_states(lifecycle) -> tuple[str, ...]:
    return tuple(s for s in lifecycle.state_names
                 if s != lifecycle.initial and s not in lifecycle.final_states)


def refuse_second_order(engine, tx, of, own_id: str | None = None) -> None:
    """ValidationError (``common_name``) naming the order in flight for the same site."""
    if of.renewal_of:
        return
    found = tx.order_for_site(of.contract, of.common_name, in_flight_states(engine.lifecycle))
    if found and found[0] != own_id:
        raise ValidationError("common_name", f"order {found[0]} for {of.common_name} on contract "
                              f"{of.contract} is in flight ({found[1]}): one live certificate "
                              "per site (cancel that order, or wait for it)", of.common_name)


def _live_states(lifecycle) -> frozenset[str]:
    return frozenset(t.source for t in lifecycle.transitions
                     if t.trigger == lifecycle.supersede_trigger)


def supersede_predecessor(engine, tx, row: dict, source: str, now: datetime) -> None:
    """``row`` (a renewal) just became live: its predecessor is superseded."""
    lifecycle = engine.lifecycle
    live = _live_states(lifecycle)
    if not row.get("renewal_of") or row["state"] not in live or source in live:
        return
    old = tx.load_order(row["renewal_of"])
    if old is None or old["state"] not in live:
        return
    data = json.loads(old["data"] or "{}")
    if "imported" in data:
        return  # history from another workspace: nothing acts on it here
    data["superseded_by"] = row["id"]
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        with tx.savepoint("supersede"):
            if tx.update_order(old["id"], old["version"], {"data": text}) != old["version"]:
                return
            old["data"] = text
            engine.apply(tx, old, lifecycle.supersede_trigger, {"superseded_by": row["id"]},
                         "renewal", now)
    except InvalidTransition as exc:  # a lifecycle without the step: the renewal still counts
        log.warning("order %s not superseded by %s: %s", old["id"], row["id"], exc)
