"""Replay: events are the truth, ``orders`` is a cache of their fold.

Folding is one dict lookup per event (no Machine, no query per event): a recorded
(trigger, source, dest) must be a transition of the lifecycle, ``seq`` must be gapless
from 1, and each event must start where the previous one ended. The deadline is rebuilt
the way the engine sets it: entering a state with a deadline sets ``at + duration``,
``hold`` keeps the deadline it suspends, ``resume`` restores it (and must return to the
state the order was held from).

Guards are not re-run: they judged the world as it was (config, contracts, payment)
when the event happened; replay judges whether the *lifecycle* allows the history. So a
what-if lifecycle (``--states module:attr``) refuses an order exactly when one of its
recorded steps no longer exists, and says at which event.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable, Iterator

from states import LIFECYCLE, Lifecycle
from workflow.clock import iso, parse_iso
from workflow.errors import NotFound, ValidationError
from workflow.history.progress import progress as progress_bar

#: the progress bar appears (on a terminal) only for replays at least this long

_REFUSED = object()        # (trigger, source, dest) is not a transition of the lifecycle
_NO_ORDER = object()       # before the first row: equal to no order id


@dataclass(frozen=True)
class _Hold:
    """Entering on_hold: keep the suspended deadline (and set on_hold's own, if any)."""

    limit: timedelta | None


@dataclass(frozen=True)
class _Resume:
    """Back from on_hold: only to the held state; its deadline comes back if it has one."""

    restore: bool


@dataclass(slots=True)
class Folded:
    """The fold of one order's events: what the ``orders`` row must say."""

    state: str
    version: int
    deadline_at: str | None
    error: str | None = None


def load_lifecycle(ref: str | None) -> Lifecycle:
    """``MODULE:ATTR`` → a Lifecycle value (e.g. made with dataclasses.replace)."""
    if not ref:
        return LIFECYCLE
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValidationError("states", f"--states {ref!r}: use MODULE:ATTR")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValidationError("states", f"--states {ref!r}: {exc}") from None
    if not isinstance(value, Lifecycle):
        raise ValidationError("states", f"--states {ref!r} is a {type(value).__name__}, not a Lifecycle")
    return value


def _deadline_text(pending) -> str | None:
    """Deadlines are kept as (event time, duration) while folding and written out once."""
    if pending is None:
        return None
    at, limit = pending
    return iso(parse_iso(at) + limit)


class Folder:
    """Folds recorded histories through one lifecycle.

    ``fold(events)`` folds one order; ``fold_rows(rows)`` folds a whole table read in
    (order_id, seq) order in a single pass, which is what ``replay --all`` uses.
    """

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        deadlines = {s.name: (s.deadline[0] if s.deadline else None) for s in lifecycle.states}
        # (trigger, source, dest) -> what the step does to the deadline: None (clears it),
        # a timedelta (sets at + it), _Hold, _Resume. Same rules as Engine.apply.
        self.steps: dict[tuple[str, str, str], object] = {}
        for t in lifecycle.transitions:
            limit = deadlines.get(t.dest)
            if t.trigger == "resume":
                action = _Resume(bool(limit))
            elif t.dest == "on_hold":
                action = _Hold(limit)
            else:
                action = limit
            self.steps[(t.trigger, t.source, t.dest)] = action

    def fold(self, events: Iterable) -> Folded:
        """events: (seq, at, trigger, source, dest) rows of one order, in seq order."""
        for _, folded in self.fold_rows((None, *e[:5]) for e in events):
            return folded
        return Folded(self.lifecycle.initial, 0, None)

    def fold_rows(self, rows: Iterable) -> Iterator[tuple[str, Folded]]:
        """rows: (order_id, seq, at, trigger, source, dest) ordered by order_id, seq.
        Yields (order_id, Folded) once per order; after a refusal the rest of that
        order's events are skipped."""
        steps, initial = self.steps, self.lifecycle.initial
        current = _NO_ORDER
        state = deadline = held = held_from = error = None
        version = 0
        for order_id, seq, at, trigger, source, dest in rows:
            if order_id != current:
                if current is not _NO_ORDER:
                    yield current, Folded(state, version, _deadline_text(deadline), error)
                current, state, version, deadline, held, held_from, error = (
                    order_id, initial, 0, None, None, None, None)
            elif error is not None:
                continue
            if seq != version + 1:
                error = f"event {version + 1} missing (next is {seq})"
                continue
            if source != state:
                error = f"event {seq} ({trigger}) starts from {source} but the order was {state}"
                continue
            action = steps.get((trigger, source, dest), _REFUSED)
            if action is None:
                deadline = None
            elif action.__class__ is timedelta:
                deadline = (at, action)
            elif action is _REFUSED:
                error = f"event {seq} ({trigger}: {source} → {dest}) is refused by this lifecycle"
                continue
            elif action.__class__ is _Hold:
                held, held_from = deadline, source
                deadline = (at, action.limit) if action.limit else None
            elif dest != held_from:  # _Resume
                error = f"event {seq} ({trigger} → {dest}) but the order was held from {held_from}"
                continue
            else:
                deadline = held if action.restore else None
            state, version = dest, seq
        if current is not _NO_ORDER:
            yield current, Folded(state, version, _deadline_text(deadline), error)


def _event_rows(conn, ids: list[str] | None):
    sql = "SELECT order_id, seq, at, trigger, source, dest FROM events"
    args: tuple = ()
    if ids is not None:
        sql += f" WHERE order_id IN ({', '.join('?' * len(ids))})"
        args = tuple(ids)
    cur = conn.execute(sql + " ORDER BY order_id, seq", args)
    cur.row_factory = None  # plain tuples: the fold unpacks them
    return cur


_COMPARED = ("state", "version", "deadline_at")


def replay_rows(conn, lifecycle: Lifecycle, ids: list[str] | None, verify: bool,
                progress: Callable[[], None] | None = None) -> list[dict]:
    """Fold the events of ``ids`` (None: every order); one row ``{id, ok, state, error}``
    per order. With ``verify`` the fold must equal the stored state, version, deadline."""
    stored: dict = {}
    if verify:
        # an imported order keeps its exported deadline in data.imported (none is live here)
        sql = ("SELECT id, state, version, COALESCE(deadline_at, "
               "json_extract(data, '$.imported.deadline_at')) FROM orders")
        args: tuple = ()
        if ids is not None:
            sql += f" WHERE id IN ({', '.join('?' * len(ids))})"
            args = tuple(ids)
        cur = conn.execute(sql, args)
        cur.row_factory = None
        stored = {r[0]: r[1:] for r in cur}
    out = []
    for order_id, f in Folder(lifecycle).fold_rows(_event_rows(conn, ids)):
        row = {"id": order_id, "ok": f.error is None, "state": f.state, "error": f.error}
        if verify and f.error is None:
            want = stored.pop(order_id, None)
            got = (f.state, f.version, f.deadline_at)
            if want is None:
                row.update(ok=False, error="no stored order row for these events")
            elif want != got:
                row.update(ok=False, error="; ".join(
                    f"{name} stored {w!r}, replayed {g!r}"
                    for name, w, g in zip(_COMPARED, want, got) if w != g))
        elif verify:
            stored.pop(order_id, None)
        out.append(row)
        if progress:
            progress()
    for order_id, (state, _, _) in stored.items():  # rows left: orders without events
        out.append({"id": order_id, "ok": False, "state": state, "error": "stored order has no events"})
    return out


def run_replay(engine, ids: list[str], all_: bool, verify: bool, states_ref: str | None,
               progress: bool = True) -> list[dict]:
    """``certflow replay``: NotFound for an unknown id; a rich progress bar on a terminal."""
    lifecycle = load_lifecycle(states_ref)
    if not ids and not all_:
        raise ValidationError("order_ids", "name order ids or use --all")
    conn = engine.store.conn
    ids = list(dict.fromkeys(ids))
    if ids:
        known = {r[0] for r in conn.execute(
            f"SELECT id FROM orders WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))}
        for order_id in ids:
            if order_id not in known:
                raise NotFound("order", order_id)
    total = len(ids) if ids else conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    with progress_bar("replaying", total if progress else 0) as advance:
        return replay_rows(conn, lifecycle, ids or None, verify, advance)
