"""Replay: events are the truth, ``orders`` is a cache of their fold.

Each recorded (trigger, source, dest) goes through the lifecycle's one step function
(states.step, the same the engine moves orders with): it must be a transition of the
lifecycle, ``seq`` must be gapless from 1, and each event must start where the previous
one ended. The deadline comes out as the engine set it (entering a state with a deadline
sets ``at + duration``, ``hold`` keeps the deadline it suspends, ``resume`` restores it
and must return to the state the order was held from).

Guards are not re-run: they judged the world as it was (config, contracts, payment)
when the event happened; replay judges whether the *lifecycle* allows the history. So a
what-if lifecycle (``--states module:attr``) refuses an order exactly when one of its
recorded steps no longer exists, and says at which event; the same lifecycle given to
``Engine(lifecycle=...)`` refuses the same moves.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Callable, Iterable, Iterator

from states import LIFECYCLE, Lifecycle, Position, Steps

from workflow.clock import iso
from workflow.errors import NotFound, ValidationError
from workflow.history.progress import progress as progress_bar

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


class Folder:
    """Folds recorded histories through one lifecycle.

    ``fold(events)`` folds one order; ``fold_rows(rows)`` folds a whole table read in
    (order_id, seq) order in a single pass, which is what ``replay --all`` uses.
    """

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.steps = Steps(lifecycle)

    def fold(self, events: Iterable) -> Folded:
        """events: (seq, at, trigger, source, dest) rows of one order, in seq order."""
        for _, folded in self.fold_rows((None, *e[:5]) for e in events):
            return folded
        return Folded(self.lifecycle.initial, 0, None)

    def fold_rows(self, rows: Iterable) -> Iterator[tuple[str, Folded]]:
        """rows: (order_id, seq, at, trigger, source, dest) ordered by order_id, seq.
        Yields (order_id, Folded) once per order; after a refusal the rest of that
        order's events are skipped."""
        fold, start = self.steps.fold, Position(self.lifecycle.initial)
        for order_id, events in groupby(rows, key=itemgetter(0)):
            pos, error = fold(start, events)
            yield order_id, Folded(pos.state, pos.version, iso(pos.deadline_at), error)


_COMPARED = ("state", "version", "deadline_at")


def replay_rows(store, lifecycle: Lifecycle, ids: list[str] | None, verify: bool,
                progress: Callable[[], None] | None = None) -> list[dict]:
    """Fold the events of ``ids`` (None: every order); one row ``{id, ok, state, error}``
    per order. With ``verify`` the fold must equal the stored state, version, deadline."""
    stored: dict = store.positions(ids) if verify else {}
    out = []
    for order_id, f in Folder(lifecycle).fold_rows(store.event_steps(ids)):
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
    store = engine.store
    ids = list(dict.fromkeys(ids))
    if ids:
        known = store.known_ids(ids)
        for order_id in ids:
            if order_id not in known:
                raise NotFound("order", order_id)
    total = len(ids) if ids else store.order_count()
    with progress_bar("replaying", total if progress else 0) as advance:
        return replay_rows(store, lifecycle, ids or None, verify, advance)
