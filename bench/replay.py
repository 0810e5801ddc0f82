"""Replay throughput against a raw read of the same events table, in the same run.

    python bench/replay.py --events 1000000 --json

Builds a throw-away database (the real schema, via workflow.store.sqlite) holding synthetic
but valid histories, inserted in bulk with SQL: mostly the happy path
place → pay → submit → ca_accept → issue → install, with some orders that expired,
were cancelled, were rejected, or still wait for approval (a live deadline), and
``orders`` rows that match their fold. Then it times

  (a) the core of ``certflow replay --all --verify`` (workflow.history.replay.replay_rows), and
  (b) a raw read of the same rows: SELECT order_id, seq, at, trigger, source, dest
      FROM events ORDER BY order_id, seq, iterating every row,

each best of ``--repeat`` runs, interleaved so that machine load hits both alike, and
prints {"replay_events_per_s", "raw_read_rows_per_s", "ratio"} (ratio = a / b).
Exit 1 when the ratio is under ``--min-ratio`` (0.3) or when replay refuses anything.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from states import LIFECYCLE
from workflow.clock import iso
from workflow.history.replay import replay_rows
from workflow.store.sqlite import SQLiteStore as Store

# Histories as (trigger, source, dest) steps; every one is a path of states.LIFECYCLE.
HAPPY = (("place", "new", "ordered"), ("pay", "ordered", "paid"), ("submit", "paid", "submitted"),
         ("ca_accept", "submitted", "awaiting_approval"), ("issue", "awaiting_approval", "issued"),
         ("install", "issued", "installed"))
EXPIRED = HAPPY[:4] + (("expire", "awaiting_approval", "cancelled"),)
CANCELLED = HAPPY[:2] + (("cancel", "paid", "cancelled"),)
REJECTED = (("place", "new", "rejected"),)
WAITING = HAPPY[:4]
HELD = HAPPY[:4] + (("hold", "awaiting_approval", "on_hold"), ("resume", "on_hold", "awaiting_approval"),
                    ("issue", "awaiting_approval", "issued"), ("install", "issued", "installed"))
#: one cycle of 20 orders: 15 happy, and one of each other kind
MIX = (HAPPY,) * 15 + (EXPIRED, CANCELLED, REJECTED, WAITING, HELD)

START = datetime(2026, 12, 1, tzinfo=timezone.utc)
ORDER_COLUMNS = ("id", "state", "version", "entered_seq", "common_name", "sans", "plan", "contract",
                 "validation", "email", "language", "organization", "locality", "prefecture",
                 "country", "deadline_at", "deadline_trigger", "data", "created_at", "updated_at")


def _deadline_of(state: str):
    s = LIFECYCLE.state(state)
    return s.deadline


def build(path: str, n_events: int, batch: int = 5000) -> tuple[int, int]:
    """Write orders and events until ``n_events`` events exist; return (orders, events)."""
    store = Store(path, synchronous="off")
    conn = store.conn
    conn.execute("PRAGMA foreign_keys=OFF")  # bulk load; rows are consistent by construction
    orders, events = [], []
    n_orders = n_done = 0

    def flush() -> None:
        with store.immediate() as c:
            c.executemany(f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES "
                          f"({', '.join('?' * len(ORDER_COLUMNS))})", orders)
            c.executemany("INSERT INTO events (order_id, seq, at, trigger, source, dest, actor, data) "
                          "VALUES (?,?,?,?,?,?,?,?)", events)
        orders.clear()
        events.clear()

    while n_done < n_events:
        steps = MIX[n_orders % len(MIX)][: n_events - n_done]
        order_id = f"20261201-{n_orders:08x}"
        t = START + timedelta(seconds=n_orders * 7)
        deadline = held = None
        for seq, (trigger, source, dest) in enumerate(steps, start=1):
            t += timedelta(minutes=seq)
            limit = _deadline_of(dest)
            if trigger == "hold":
                held, deadline = deadline, None
            elif trigger == "resume":
                deadline = held
            else:
                deadline = t + limit[0] if limit else None
            events.append((order_id, seq, iso(t), trigger, source, dest, "bench", None))
        state, version = steps[-1][2], len(steps)
        dl_state = _deadline_of(state)
        orders.append((order_id, state, version, version, f"www{n_orders}.example.jp",
                       json.dumps([f"example{n_orders}.jp"]), "basic", "C-1001", "file",
                       "owner@example.jp", "ja", "Example Corp.", "Shinjuku-ku", "Tokyo", "JP",
                       iso(deadline), dl_state[1] if (dl_state and deadline) else None, "{}",
                       iso(START), iso(t)))
        n_orders += 1
        n_done += len(steps)
        if len(events) >= batch:
            flush()
    flush()
    store.close()
    return n_orders, n_done


def raw_read(conn) -> int:
    cur = conn.execute("SELECT order_id, seq, at, trigger, source, dest FROM events "
                       "ORDER BY order_id, seq")
    n = 0
    for _row in cur:
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=800_000, help="events to generate (default 800000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each, best kept (default 3)")
    p.add_argument("--min-ratio", type=float, default=0.3)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="certflow-bench-") as tmp:
        path = str(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        n_orders, n_events = build(path, args.events)
        build_s = time.perf_counter() - t0
        store = Store(path)
        conn = store.conn
        replay_best = raw_best = float("inf")
        refused = 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = raw_read(conn)
            raw_best = min(raw_best, time.perf_counter() - t0)
            assert rows == n_events, (rows, n_events)
            t0 = time.perf_counter()
            out = replay_rows(store, LIFECYCLE, None, verify=True)
            replay_best = min(replay_best, time.perf_counter() - t0)
            refused = sum(1 for r in out if not r["ok"])
            assert len(out) == n_orders, (len(out), n_orders)
        store.close()

    figures = {
        "events": n_events, "orders": n_orders, "build_s": round(build_s, 2),
        "replay_events_per_s": round(n_events / replay_best),
        "raw_read_rows_per_s": round(n_events / raw_best),
        "ratio": round(raw_best / replay_best, 3),
        "refused": refused,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{n_events} events in {n_orders} orders: replay --verify "
              f"{figures['replay_events_per_s']:,} events/s, raw read "
              f"{figures['raw_read_rows_per_s']:,} rows/s, ratio {figures['ratio']} "
              f"(limit {args.min_ratio})")
    if refused:
        print(f"replay refused {refused} synthetic orders: the generator or the fold is wrong",
              file=sys.stderr)
        return 1
    return 0 if figures["ratio"] >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
