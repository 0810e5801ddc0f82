"""Engine command throughput against raw sqlite3 doing the same writes, in one run.

Each order goes place → pay → submit → ca_accept → cancel: five commands, each one
``BEGIN IMMEDIATE`` transaction that reads the order, updates it, appends an event and
queues the entry effects. The baseline issues the same SQL statements with the same
pragmas (WAL, synchronous=FULL) through plain sqlite3, without the engine (no
validation, no Machine, no JSON). ratio = engine / raw.

    python bench/engine.py --orders 500 [--json] [--synchronous full|normal]
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow import config as config_mod  # noqa: E402
from workflow.clock import MovableClock  # noqa: E402
from workflow.engine import Engine  # noqa: E402
from workflow.workspace import default_config_text  # noqa: E402

ORDER = dict(common_name="www.example.jp", organization="Example Corp.", locality="Shinjuku-ku",
             prefecture="Tokyo", country="JP", plan="basic", contract="C-1001", email="owner@example.jp")
STEPS = ("place", "pay", "submit", "ca_accept", "cancel")
# effects the engine queues on entering each step's destination (for the raw baseline)
EFFECTS = {"place": 1, "pay": 2, "submit": 1, "ca_accept": 2, "cancel": 3}


class EngineRun:
    def __init__(self, directory: Path, synchronous: str) -> None:
        from datetime import datetime, timezone
        cfg_path = directory / "config.toml"
        cfg_path.write_text(default_config_text().replace('synchronous = "full"',
                                                          f'synchronous = "{synchronous}"'))
        self.engine = Engine(config_mod.load(cfg_path),
                             MovableClock(datetime(2026, 12, 1, tzinfo=timezone.utc)))
        self.engine.place(**ORDER)  # warm-up: loads the Public Suffix List once, as a daemon has

    def run(self, n: int) -> float:
        engine = self.engine
        start = time.perf_counter()
        for _ in range(n):
            o = engine.place(**ORDER)
            engine.fire(o.id, "pay")
            engine.fire(o.id, "submit", csr="-----BEGIN CERTIFICATE REQUEST-----")
            engine.fire(o.id, "ca_accept", application_id="app-1")
            engine.fire(o.id, "cancel", reason="bench")
        return time.perf_counter() - start


class RawRun:
    DESTS = {"place": "ordered", "pay": "paid", "submit": "submitted", "ca_accept": "awaiting_approval",
             "cancel": "cancelled"}

    def __init__(self, path: Path, synchronous: str) -> None:
        conn = self.conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, state TEXT, version INT, data TEXT, "
                     "deadline_at TEXT, reason TEXT, updated_at TEXT)")
        conn.execute("CREATE TABLE events (order_id TEXT, seq INT, at TEXT, trigger TEXT, source TEXT, "
                     "dest TEXT, actor TEXT, data TEXT, PRIMARY KEY (order_id, seq))")
        conn.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, order_id TEXT, seq INT, effect TEXT, "
                     "idem_key TEXT UNIQUE, status TEXT, next_at TEXT)")
        conn.execute("CREATE INDEX outbox_due ON outbox (status, next_at)")
        self.i = 0

    def run(self, n: int) -> float:
        conn = self.conn
        now = "2026-12-01T00:00:00Z"
        start = time.perf_counter()
        for _ in range(n):
            self.i += 1
            oid = f"o{self.i}"
            state = "new"
            for version, step in enumerate(STEPS, start=1):
                conn.execute("BEGIN IMMEDIATE")
                if step == "place":
                    conn.execute("INSERT INTO orders VALUES (?, 'new', 0, '{}', NULL, NULL, ?)", (oid, now))
                conn.execute("SELECT * FROM orders WHERE id = ?", (oid,)).fetchone()
                dest = self.DESTS[step]
                conn.execute("UPDATE orders SET state = ?, version = ?, updated_at = ? "
                             "WHERE id = ? AND version = ?", (dest, version, now, oid, version - 1))
                conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, 'bench', NULL)",
                             (oid, version, now, step, state, dest))
                conn.executemany("INSERT INTO outbox (order_id, seq, effect, idem_key, status, next_at) "
                                 "VALUES (?, ?, 'e', ?, 'pending', ?)",
                                 [(oid, version, f"{oid}:{version}:{k}", now) for k in range(EFFECTS[step])])
                conn.execute("COMMIT")
                state = dest
        return time.perf_counter() - start


def measure(n: int, synchronous: str, rounds: int = 10) -> tuple[float, float]:
    """Alternate engine and raw in rounds so both see the same machine noise."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        engine, raw = EngineRun(tmp, synchronous), RawRun(tmp / "raw.db", synchronous)
        t_engine = t_raw = 0.0
        per_round = max(1, n // rounds)
        for _ in range(rounds):
            t_raw += raw.run(per_round)
            t_engine += engine.run(per_round)
        engine.engine.close()
        total = per_round * rounds * len(STEPS)
        return total / t_engine, total / t_raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--synchronous", default="full", choices=["full", "normal"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    eng, raw = measure(args.orders, args.synchronous)
    result = {"orders": args.orders, "commands": args.orders * len(STEPS), "synchronous": args.synchronous,
              "engine_per_s": round(eng, 1), "raw_sqlite_per_s": round(raw, 1), "ratio": round(eng / raw, 3)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"engine {eng:,.0f} commands/s, raw sqlite3 {raw:,.0f} tx/s, ratio {eng / raw:.2f} "
              f"({args.orders} orders x {len(STEPS)} commands, synchronous={args.synchronous})")


if __name__ == "__main__":
    main()
