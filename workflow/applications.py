"""Incomplete applications (the provider's step 2): the ``needs_info`` road.

``query`` asks the customer for the fields named (from ``ordered`` or ``paid``; the mail
names each field and what is expected); ``amend`` takes the answer, checks the whole
order again exactly as intake does, and returns the order to the state it was queried
from, its event recording each changed field's old and new value. Intake itself routes
an organization that is not in Latin script here (the seed wants the official English
name) instead of refusing it. The wait is ``[deadlines] needs_info_days`` long; then
the order is cancelled (states/ says why).
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any, Iterable

from states import Deadline, Lifecycle
from workflow.errors import InvalidTransition, ValidationError
from workflow.intake import validate_order

#: the order fields a query may name and an amendment may change
FIELDS: tuple[str, ...] = ("common_name", "organization", "unit", "locality", "prefecture",
                           "country", "email")
#: the CLI's short names (``--cn``, ``--org``) for the same fields
ALIASES = {"cn": "common_name", "org": "organization"}
NOTE_CAP = 500


def configured(lifecycle: Lifecycle, deadlines: dict) -> Lifecycle:
    """The lifecycle with the ``needs_info`` wait of ``[deadlines] needs_info_days``."""
    name = lifecycle.needs_info_state
    days = deadlines.get("needs_info_days")
    if name not in lifecycle.state_names or days is None:
        return lifecycle
    state = lifecycle.state(name)
    if state.deadline is None or state.deadline.after == timedelta(days=days):
        return lifecycle
    changed = dataclasses.replace(state, deadline=Deadline(
        timedelta(days=days), state.deadline.trigger, state.deadline.reason))
    return dataclasses.replace(lifecycle, states=tuple(
        changed if s.name == name else s for s in lifecycle.states))


def query_fields(fields: Iterable[str]) -> list[str]:
    """The fields of a query, checked: ValidationError naming ``field`` otherwise."""
    out: list[str] = []
    for given in fields:
        name = ALIASES.get(str(given).strip(), str(given).strip())
        if name not in FIELDS:
            raise ValidationError("field", f"field {given!r} cannot be queried: use one of "
                                  f"{', '.join(FIELDS)}", given)
        if name not in out:
            out.append(name)
    if not out:
        raise ValidationError("field", "a query names at least one field")
    return out


def _note(note: str | None) -> str | None:
    if note is None or not str(note).strip():
        return None
    note = str(note).strip()
    if len(note) > NOTE_CAP:
        raise ValidationError("note", f"note is longer than {NOTE_CAP} characters", note[:40])
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in note):
        raise ValidationError("note", "note holds control characters")
    return note


def query_in(engine, tx, row: dict, fields: list[str], note: str | None, actor: str,
             now: datetime) -> dict:
    """Fire the query on ``row`` inside ``tx``: what is asked (with the values given so
    far and where it came from) is kept in ``orders.data.query`` for the mail and amend."""
    data = json.loads(row["data"] or "{}")
    data["query"] = {"fields": fields, "note": note, "from": row["state"],
                     "given": {f: row.get(f) for f in fields}}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    _write(tx, row, {"data": text})
    return engine.apply(tx, row, "query", {"fields": fields, "note": note}, actor, now)


def query(engine, order_id: str, fields: Iterable[str], note: str | None, actor: str):
    """``engine.query``: ask the customer to complete the application."""
    asked, note = query_fields(fields), _note(note)
    with engine.command() as tx:
        row = query_in(engine, tx, engine.load(tx, order_id), asked, note, actor, engine.now())
    return engine._order(row)


def amend(engine, order_id: str, changes: dict[str, Any], actor: str):
    """``engine.amend``: the customer's answer. Checked like a new order; a refusal
    names the field and writes nothing."""
    changes = {ALIASES.get(k, k): v for k, v in changes.items()}
    for key in changes:
        if key not in FIELDS:
            raise ValidationError(key, f"{key} cannot be amended (amendable: "
                                  f"{', '.join(FIELDS)})", key)
    if not changes:
        raise ValidationError("field", "an amendment changes at least one field")
    lifecycle = engine.lifecycle
    now = engine.now()
    with engine.command() as tx:
        row = engine.load(tx, order_id)
        if row["state"] != lifecycle.needs_info_state:
            raise InvalidTransition(order_id, row["state"], "amend", "only an order waiting "
                                    f"in {lifecycle.needs_info_state} is amended (`order query` "
                                    "asks first)")
        came_from = (json.loads(row["data"] or "{}").get("query") or {}).get("from", "ordered")
        given = {k: row[k] for k in ("common_name", "organization", "unit", "locality",
                                     "prefecture", "country", "plan", "contract", "email",
                                     "validation", "approver", "language", "renewal_of")}
        given.update(changes)
        of = validate_order({k: v for k, v in given.items() if v is not None}, engine.contracts,
                            engine.config["validation"]["default"],
                            engine.adapters.ca.validation_methods)
        new = {f: getattr(of, f) for f in FIELDS}
        diff = {f: {"old": row[f], "new": new[f]} for f in FIELDS if new[f] != row[f]}
        updates: dict[str, Any] = {f: new[f] for f in diff}
        if "common_name" in diff:
            if came_from != lifecycle.initial and came_from != "ordered":
                raise ValidationError("common_name", f"order {order_id} is paid: a new common "
                                      "name is another certificate, place a new order",
                                      of.common_name)
            from workflow.sites import refuse_second_order
            refuse_second_order(engine, tx, of, order_id)
            updates["sans"] = json.dumps(list(of.sans))
            if row["validation"] == "email":  # the approver's address follows the domain
                updates["approver"] = engine._approver("email", None, of.common_name, now)
                diff["approver"] = {"old": row["approver"], "new": updates["approver"]}
        data = json.loads(row["data"] or "{}")
        data.pop("query", None)
        updates["data"] = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        _write(tx, row, updates)
        row = engine.apply(tx, row, "amend", {"changes": diff, "queried_from": came_from},
                           actor, now)
    return engine._order(row)


def _write(tx, row: dict, updates: dict) -> None:
    """Order columns the trigger's own write leaves alone, at the row's version."""
    from workflow.errors import ConcurrencyError
    found = tx.update_order(row["id"], row["version"], updates)
    if found != row["version"]:
        raise ConcurrencyError(row["id"], row["version"], found)
    row.update(updates)


#: what intake says when it routes an order here by itself
INTAKE_NOTES = {"organization": "the organization's name is not in Latin script: the "
                                "certificate needs its official English name"}


def intake_note(gaps: Iterable[str]) -> str:
    return "; ".join(INTAKE_NOTES.get(g, g) for g in gaps)
