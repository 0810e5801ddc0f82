"""Replay: events are the truth, ``orders`` is a cache of their fold.

Folding is a dict lookup per event against ``Lifecycle.table()`` (no Machine, no query
per event): a recorded (trigger, source, dest) must be a transition of the lifecycle,
and the deadline is rebuilt from the event time and the destination's deadline.
Guards are not re-run: they judged the world as it was (config, contracts) when the
event happened; replay judges whether the *lifecycle* allows the history.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from itertools import groupby
from typing import Iterable, Iterator

from states import LIFECYCLE, Lifecycle
from workflow.clock import iso, parse_iso
from workflow.errors import NotFound, ValidationError


@dataclass
class Folded:
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
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.table = {k: frozenset(v) for k, v in lifecycle.table().items()}
        self.deadlines = {s.name: s.deadline for s in lifecycle.states}

    def fold(self, events: Iterable) -> Folded:
        """events: rows with seq, at, trigger, source, dest (ordered by seq)."""
        state, version, deadline, held_deadline = self.lifecycle.initial, 0, None, None
        table, deadlines = self.table, self.deadlines
        for e in events:
            seq, trigger, source, dest = e[0], e[2], e[3], e[4]
            if seq != version + 1:
                return Folded(state, version, deadline, f"event {version + 1} missing (next is {seq})")
            if source != state:
                return Folded(state, version, deadline,
                              f"event {seq} starts from {source} but the order was {state}")
            allowed = table.get((trigger, source))
            if allowed is None or dest not in allowed:
                return Folded(state, version, deadline,
                              f"event {seq} ({trigger}: {source} → {dest}) is refused by this lifecycle")
            limit = deadlines.get(dest)
            if trigger == "resume":
                new_deadline = held_deadline if limit else None
            elif limit:
                new_deadline = iso(parse_iso(e[1]) + limit[0])
            else:
                new_deadline = None
            if dest == "on_hold":
                held_deadline = deadline
            state, version, deadline = dest, seq, new_deadline
        return Folded(state, version, deadline)


def _events_by_order(conn, ids: list[str] | None) -> Iterator[tuple[str, list]]:
    sql = "SELECT order_id, seq, at, trigger, source, dest FROM events"
    args: tuple = ()
    if ids is not None:
        sql += f" WHERE order_id IN ({', '.join('?' * len(ids))})"
        args = tuple(ids)
    sql += " ORDER BY order_id, seq"
    cur = conn.execute(sql, args)
    cur.row_factory = None
    for order_id, rows in groupby(cur, key=lambda r: r[0]):
        yield order_id, [r[1:] for r in rows]


def replay_rows(conn, lifecycle: Lifecycle, ids: list[str] | None, verify: bool,
                progress=None) -> list[dict]:
    folder = Folder(lifecycle)
    stored = {}
    if verify:
        sql = "SELECT id, state, version, deadline_at FROM orders"
        stored = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(sql)}
    out = []
    seen = set()
    for order_id, events in _events_by_order(conn, ids):
        seen.add(order_id)
        f = folder.fold(events)
        row = {"id": order_id, "ok": f.error is None, "state": f.state, "error": f.error}
        if verify and f.error is None:
            want = stored.get(order_id)
            got = (f.state, f.version, f.deadline_at)
            if want is None:
                row.update(ok=False, error="no stored order row for these events")
            elif want != got:
                diffs = [f"{name} stored {w!r}, replayed {g!r}"
                         for name, w, g in zip(("state", "version", "deadline_at"), want, got) if w != g]
                row.update(ok=False, error="; ".join(diffs))
        out.append(row)
        if progress:
            progress()
    if verify:
        for order_id in (ids if ids is not None else stored):
            if order_id not in seen and order_id in stored:
                out.append({"id": order_id, "ok": False, "state": stored[order_id][0],
                            "error": "stored order has no events"})
    return out


def run_replay(engine, ids: list[str], all_: bool, verify: bool, states_ref: str | None,
               progress: bool = True) -> list[dict]:
    lifecycle = load_lifecycle(states_ref)
    if not ids and not all_:
        raise ValidationError("order_ids", "name order ids or use --all")
    conn = engine.store.conn
    if ids:
        known = {r[0] for r in conn.execute(
            f"SELECT id FROM orders WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))}
        for order_id in ids:
            if order_id not in known:
                raise NotFound("order", order_id)
    total = len(ids) if ids else conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    if progress and sys.stderr.isatty() and total > 200:
        from rich.progress import Progress
        with Progress(transient=True) as bar:
            task = bar.add_task("replaying", total=total)
            return replay_rows(conn, lifecycle, ids or None, verify, lambda: bar.advance(task))
    return replay_rows(conn, lifecycle, ids or None, verify)
