"""Engine command throughput against raw sqlite3 doing the same writes, in one run.

Each order goes place → pay → submit → ca_accept → cancel: five commands, each one
``BEGIN IMMEDIATE`` transaction that reads the order, updates it, appends an event and
queues the entry effects. The baseline issues the same SQL statements with the same
pragmas (WAL, synchronous=FULL) through plain sqlite3, without the engine (no
validation, no Machine, no JSON) on the same schema. ratio = engine / raw.

With ``--store postgresql://…`` both run on that (empty, or certflow's) PostgreSQL
database: the engine through its PostgreSQL store, the baseline as plain psycopg
issuing the same statements (translated once by the store's dialect: ``%s``, the
``FOR UPDATE`` of the order row, the ``NOTIFY`` at commit).

    python bench/engine.py --orders 500 [--json] [--synchronous full|normal] [--store URL]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from workflow import config as config_mod
from workflow.clock import MovableClock
from workflow.engine import Engine
from workflow.ops.workspace import init_workspace

ORDER = dict(common_name="www.example.jp", organization="Example Corp.", locality="Shinjuku-ku",
             prefecture="Tokyo", country="JP", plan="basic", contract="C-1001", email="owner@example.jp")
STEPS = ("place", "pay", "submit", "ca_accept", "cancel")
# effects the engine queues on entering each step's destination (for the raw baseline)
EFFECTS = {"place": 1, "pay": 2, "submit": 1, "ca_accept": 2, "cancel": 3}


class EngineRun:
    def __init__(self, directory: Path, synchronous: str, url: str | None = None) -> None:
        from datetime import datetime, timezone
        cfg_path = init_workspace(directory)  # the embedded defaults, master key and local CA
        cfg_path.write_text(cfg_path.read_text().replace('synchronous = "full"',
                                                         f'synchronous = "{synchronous}"'))
        if url:
            cfg_path.write_text(cfg_path.read_text().replace("[store]", f'[store]\nurl = "{url}"', 1))
        self.engine = Engine(config_mod.load(cfg_path),
                             MovableClock(datetime(2026, 12, 1, tzinfo=timezone.utc)))
        warm = self.engine.place(**ORDER)  # warm-up: loads the Public Suffix List once, as a daemon has
        self.engine.fire(warm.id, "cancel")  # one order in flight per site: it may not stay

    def internal(self, order_id: str, trigger: str, **data) -> None:
        engine = self.engine
        with engine.command() as tx:
            engine.apply(tx, engine.load(tx, order_id), trigger, data, "bench", engine.now())

    def run(self, n: int) -> float:
        engine = self.engine
        start = time.perf_counter()
        for _ in range(n):
            o = engine.place(**ORDER)
            engine.fire(o.id, "pay")
            # the two internal steps go the way effects fire them: one command each
            self.internal(o.id, "submit", csr="-----BEGIN CERTIFICATE REQUEST-----")
            self.internal(o.id, "ca_accept", application_id="app-1")
            engine.fire(o.id, "cancel", reason="bench")
        return time.perf_counter() - start


class RawRun:
    """The same statements the engine issues per command, on the same schema (made by
    the engine's own migrations) with the same pragmas, written by hand: what is left
    of the ratio is the engine's own cost (validation, Machine, JSON, bookkeeping)."""

    DESTS = {"place": "ordered", "pay": "paid", "submit": "submitted", "ca_accept": "awaiting_approval",
             "cancel": "cancelled"}

    def __init__(self, path: Path, synchronous: str, url: str | None = None) -> None:
        self.url, self.i = url, 0
        if url:
            self.conn = PsycopgRaw(url)
            return
        from workflow.store.sqlite import SQLiteStore
        self.conn = SQLiteStore(str(path), synchronous).conn  # schema + pragmas, then plain sqlite3
        self.conn.row_factory = None

    def run(self, n: int) -> float:
        conn = self.conn
        now = "2026-12-01T00:00:00Z"
        from workflow.store.schema import ORDER_COLUMNS
        columns = ", ".join(ORDER_COLUMNS)
        start = time.perf_counter()
        for _ in range(n):
            self.i += 1
            oid = f"o{self.i}"
            state = "new"
            for version, step in enumerate(STEPS, start=1):
                conn.execute("BEGIN" if self.url else "BEGIN IMMEDIATE")
                # the contract book's lookup (a seed from config.toml: the row is absent)
                conn.execute("SELECT id, plan, status, body, updated_at, updated_by FROM contracts "
                             "WHERE id = ?", ("C-1001",)).fetchone()
                if step == "place":
                    conn.execute("SELECT id, state FROM orders WHERE contract = ? AND common_name = ? "
                                 "AND state IN (?, ?, ?) ORDER BY created_at LIMIT 1",
                                 ("C-1001", "www.example.jp", "ordered", "paid", "on_hold")).fetchone()
                    conn.execute(f"INSERT INTO orders ({columns}) VALUES ({', '.join('?' * 27)})",
                                 (oid, "new", 0, 0, "www.example.jp", '["example.jp"]', "basic", "C-1001",
                                  "file", None, "owner@example.jp", "ja", "Example Corp.", None,
                                  "Shinjuku-ku", "Tokyo", "JP", None, None, None, None, None, None,
                                  None, "{}", now, now))
                else:
                    conn.execute(f"SELECT {columns} FROM orders WHERE id = ?"
                                 + (" FOR UPDATE" if self.url else ""), (oid,)).fetchone()
                dest = self.DESTS[step]
                conn.execute("UPDATE orders SET state = ?, version = ?, updated_at = ?, reason = ?, "
                             "deadline_at = ?, deadline_trigger = ?, entered_seq = ? "
                             "WHERE id = ? AND version = ?",
                             (dest, version, now, None, None, None, version, oid, version - 1))
                conn.execute("INSERT INTO events (order_id, seq, at, trigger, source, dest, actor, data) "
                             "VALUES (?,?,?,?,?,?,?,?)", (oid, version, now, step, state, dest, "bench", None))
                conn.executemany(
                    "INSERT INTO outbox (order_id, seq, state, effect, param, idem_key, bound, status, "
                    "attempts, next_at, created_at) VALUES (?,?,?,?,?,?,?,'pending',0,?,?) "
                    "ON CONFLICT(idem_key) DO UPDATE SET status='pending', attempts=0, "
                    "next_at=excluded.next_at, lease_owner=NULL, lease_until=NULL",
                    [(oid, version, dest, "e", None, f"{oid}:{version}:{k}", 1, now, now)
                     for k in range(EFFECTS[step])])
                # the engine reads the certificate back only for states that carry one:
                # none of these steps ends in such a state
                if self.url:
                    conn.execute("NOTIFY certflow")
                conn.execute("COMMIT")
                state = dest
        return time.perf_counter() - start


class PsycopgRaw:
    """Plain psycopg (autocommit, explicit BEGIN/COMMIT as the store does) taking the
    SQLite-dialect statements above, each translated once."""

    def __init__(self, url: str) -> None:
        import psycopg
        from workflow.store.dialect import postgres
        self.raw, self.translate = psycopg.connect(url, autocommit=True), postgres
        self.raw.execute("SET synchronous_commit = on")

    def execute(self, sql: str, args=()):
        return self.raw.execute(self.translate(sql), args)

    def executemany(self, sql: str, rows) -> None:
        self.raw.cursor().executemany(self.translate(sql), rows)


def measure(n: int, synchronous: str, rounds: int = 10,
            url: str | None = None) -> tuple[float, float]:
    """Alternate engine and raw in rounds so both see the same machine noise."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        engine = EngineRun(tmp, synchronous, url)  # makes the schema in a PostgreSQL database
        raw = RawRun(tmp / "raw.db", synchronous, url)
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
    ap.add_argument("--store", metavar="URL", help="a PostgreSQL database (postgresql://…) "
                    "instead of a temporary SQLite file")
    args = ap.parse_args()
    eng, raw = measure(args.orders, args.synchronous, url=args.store)
    peer = "raw_psycopg_per_s" if args.store else "raw_sqlite_per_s"
    result = {"orders": args.orders, "commands": args.orders * len(STEPS),
              "store": "postgresql" if args.store else "sqlite", "synchronous": args.synchronous,
              "engine_per_s": round(eng, 1), peer: round(raw, 1), "ratio": round(eng / raw, 3)}
    if args.json:
        print(json.dumps(result))
    else:
        where = "raw psycopg" if args.store else "raw sqlite3"
        print(f"engine {eng:,.0f} commands/s, {where} {raw:,.0f} tx/s, ratio {eng / raw:.2f} "
              f"({args.orders} orders x {len(STEPS)} commands, "
              + ("PostgreSQL)" if args.store else f"synchronous={args.synchronous})"))


if __name__ == "__main__":
    main()
