"""The daemon's two hot paths, each against a limit measured in the same run.

    python bench/daemon.py [--orders N] [--due N] [--pays N] [--json]

(a) Deadline sweep: among ``--orders`` orders (default 100,000), ``--due`` of them
    (default 10,000) sit in awaiting_approval past their 10-day deadline. One
    ``deadlines.sweep`` fires them all through the engine (Machine, guards, event,
    outbox). The limit is raw SQL making the same writes on an identical copy of the
    database (update state/version/reason/deadline, insert the event, insert the three
    outbox rows ``cancelled`` queues), in the same batches and with the same
    ``synchronous`` setting. ``sweep_ratio`` = sweep rate / raw rate (goal >= 0.3).
(b) Pay to CA submission: a real ``certflow daemon`` process runs on the embedded
    defaults; this process pays orders one at a time through the library
    (``Engine.fire(id, "pay")``) and measures until the ``submit_ca`` effect is done
    (the CA has the application and the order is ``awaiting_approval``). That path
    includes making the RSA-2048 key and CSR. Goal: p99 < 1 s.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from workflow import config as config_mod
from workflow.effects import deadlines
from workflow.clock import SystemClock, iso
from states import LIFECYCLE
from workflow.engine import Engine
from workflow.store.schema import ORDER_COLUMNS
from workflow.ops.workspace import init_workspace

ROOT = Path(__file__).resolve().parents[1]
REASON = LIFECYCLE.deadline_reason("expire")
#: what entering ``cancelled`` queues (states.lifecycle), for the raw-SQL side
CANCELLED_EFFECTS = (("notify", "cancelled", 0), ("cleanup_validation", None, 0),
                     ("cancel_ca", None, 0))


# --- (a) the deadline sweep ---------------------------------------------------------


def populate(db_path: str, orders: int, due: int, now: datetime) -> None:
    """Bulk-insert ``orders`` orders with full histories; ``due`` of them overdue."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    cols = list(ORDER_COLUMNS)
    waiting = min(orders - due, orders // 5)  # awaiting approval, deadline still ahead
    path = {"awaiting_approval": ("place", "pay", "submit", "ca_accept"),
            "installed": ("place", "pay", "submit", "ca_accept", "issue", "install")}
    states = {"place": ("new", "ordered"), "pay": ("ordered", "paid"),
              "submit": ("paid", "submitted"), "ca_accept": ("submitted", "awaiting_approval"),
              "issue": ("awaiting_approval", "issued"), "install": ("issued", "installed")}
    order_rows, event_rows = [], []
    for i in range(orders):
        overdue, pending = i < due, due <= i < due + waiting
        state = "awaiting_approval" if (overdue or pending) else "installed"
        created = now - timedelta(days=11 if overdue else 2, minutes=i % 1440)
        deadline = (iso(now - timedelta(minutes=1 + i % 600)) if overdue else
                    iso(now + timedelta(days=5, minutes=i % 600)) if pending else None)
        oid = f"20260101-{i:08x}"
        version = len(path[state])
        row = {
            "id": oid, "state": state, "version": version, "entered_seq": 4 if state ==
            "awaiting_approval" else version, "common_name": f"www.shop{i}.example.jp",
            "sans": json.dumps([f"shop{i}.example.jp"]), "plan": "basic", "contract": "C-1001",
            "validation": "email", "approver": f"admin@shop{i}.example.jp",
            "email": f"owner{i}@example.jp", "language": "ja", "organization": "Example Corp.",
            "unit": None, "locality": "Shinjuku-ku", "prefecture": "Tokyo", "country": "JP",
            "renewal_of": None, "csr": None, "reason": None, "held_from": None,
            "held_deadline": None, "deadline_at": deadline,
            "deadline_trigger": "expire" if deadline else None,
            "data": json.dumps({"application_id": f"la-{i:016x}", "challenges": []}),
            "created_at": iso(created), "updated_at": iso(created)}
        order_rows.append(tuple(row[c] for c in cols))
        for seq, trigger in enumerate(path[state], start=1):
            src, dest = states[trigger]
            event_rows.append((oid, seq, iso(created), trigger, src, dest, "bench", None))
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO orders ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                     order_rows)
    conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", event_rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def raw_sweep(db_path: str, synchronous: str, batch: int = 2000) -> int:
    """The same writes as ``deadlines.sweep``, in plain SQL, batch for batch."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    now = iso(datetime.now(timezone.utc))
    fired = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute("SELECT id, version, data FROM orders WHERE deadline_at <= ? "
                            "ORDER BY deadline_at LIMIT ?", (now, batch)).fetchall()
        conn.executemany(
            "UPDATE orders SET state = 'cancelled', version = ?, entered_seq = ?, reason = ?, "
            "deadline_at = NULL, deadline_trigger = NULL, updated_at = ?, data = ? "
            "WHERE id = ? AND version = ?",
            [(v + 1, v + 1, REASON, now, data, oid, v) for oid, v, data in rows])
        conn.executemany(
            "INSERT INTO events (order_id, seq, at, trigger, source, dest, actor, data) "
            "VALUES (?,?,?,'expire','awaiting_approval','cancelled','deadline',?)",
            [(oid, v + 1, now, json.dumps({"reason": REASON})) for oid, v, _ in rows])
        conn.executemany(
            "INSERT INTO outbox (order_id, seq, state, effect, param, idem_key, bound, status, "
            "attempts, next_at, created_at) VALUES (?,?,'cancelled',?,?,?,?,'pending',0,?,?)",
            [(oid, v + 1, kind, param, f"{oid}:{v + 1}:{kind}" + (f":{param}" if param else ""),
              bound, now, now) for oid, v, _ in rows for kind, param, bound in CANCELLED_EFFECTS])
        conn.execute("COMMIT")
        fired += len(rows)
        if len(rows) < batch:
            break
    conn.close()
    return fired


def bench_sweep(work: Path, orders: int, due: int) -> dict:
    config_path = init_workspace(work / "sweep")
    cfg = config_mod.load(config_path)
    db1 = cfg["store"]["path"]
    Engine(cfg).close()  # schema
    start = time.perf_counter()
    populate(db1, orders, due, datetime.now(timezone.utc))
    built = time.perf_counter() - start
    db2 = db1 + ".raw"
    shutil.copyfile(db1, db2)

    engine = Engine(cfg, SystemClock())
    start = time.perf_counter()
    fired = deadlines.sweep(engine)
    sweep_s = time.perf_counter() - start
    engine.close()
    start = time.perf_counter()
    raw_fired = raw_sweep(db2, cfg["store"]["synchronous"])
    raw_s = time.perf_counter() - start
    if fired != due or raw_fired != due:
        raise SystemExit(f"bench broken: sweep fired {fired}, raw {raw_fired}, expected {due}")
    check = [sqlite3.connect(p).execute(
        "SELECT (SELECT count(*) FROM orders WHERE state = 'cancelled'), "
        "(SELECT count(*) FROM outbox), (SELECT count(*) FROM events)").fetchone() for p in (db1, db2)]
    if check[0] != check[1]:
        raise SystemExit(f"bench broken: sweep wrote {check[0]}, raw SQL wrote {check[1]}")
    return {"build_s": built, "sweep_per_s": fired / sweep_s, "raw_per_s": raw_fired / raw_s}


# --- (b) pay → CA submission with a daemon running ------------------------------------


def _order_fields(i: int) -> dict:
    return dict(common_name=f"www.pay{i}.example.jp", organization="Example Corp.",
                locality="Shinjuku-ku", prefecture="Tokyo", country="JP", plan="basic",
                contract="C-1001", email=f"owner{i}@example.jp")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench broken: timed out waiting for {what}")
        time.sleep(0.002)


def bench_pay(work: Path, pays: int) -> list[float]:
    config_path = init_workspace(work / "pay")
    engine = Engine.from_config(str(config_path))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    daemon = subprocess.Popen([sys.executable, "-m", "workflow", "--config", str(config_path),
                               "daemon"], env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    conn = engine.store.conn

    def idle() -> bool:
        return conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending' AND next_at <= ?",
                            (iso(engine.now()),)).fetchone()[0] == 0

    def submitted(order_id: str) -> bool:
        row = conn.execute("SELECT status FROM outbox WHERE order_id = ? AND effect = 'submit_ca'",
                           (order_id,)).fetchone()
        return bool(row) and row[0] == "done"

    latencies = []
    try:
        ids = [engine.place(**_order_fields(i)).id for i in range(pays + 2)]
        _wait(idle, 60, "the daemon to send the order mails")
        for n, order_id in enumerate(ids):
            time.sleep(random.uniform(0, 0.05))  # pays arrive at any point of the poll cycle
            start = time.perf_counter()
            engine.fire(order_id, "pay", actor="bench")
            _wait(lambda: submitted(order_id), 30, f"submit_ca of {order_id}")
            if n >= 2:  # the first two warm up the daemon (imports, CA key load)
                latencies.append(time.perf_counter() - start)
            _wait(lambda: engine.get(order_id).state == "installed" and idle(), 30,
                  f"{order_id} to be installed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            _, err = daemon.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            _, err = daemon.communicate()
        engine.close()
    if daemon.returncode != 0:
        raise SystemExit(f"bench broken: daemon exited {daemon.returncode}: {err[-2000:]}")
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the database")
    parser.add_argument("--due", type=int, default=10_000, help="overdue approvals among them")
    parser.add_argument("--pays", type=int, default=40, help="orders paid one at a time in (b)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.due <= args.orders or args.pays < 1:
        parser.error("need 1 <= --due <= --orders and --pays >= 1")

    with tempfile.TemporaryDirectory(prefix="certflow-bench-") as tmp:
        sweep = bench_sweep(Path(tmp), args.orders, args.due)
        latencies = bench_pay(Path(tmp), args.pays)
    ratio = sweep["sweep_per_s"] / sweep["raw_per_s"]
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(f"deadline sweep: {args.due} of {args.orders} orders, engine {sweep['sweep_per_s']:.0f}/s, "
          f"raw SQL {sweep['raw_per_s']:.0f}/s, ratio {ratio:.2f} (goal >= 0.3)")
    print(f"pay -> CA submission with the daemon running ({len(latencies)} orders): "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (goal p99 < 1000 ms), "
          f"mean {statistics.mean(latencies) * 1000:.0f} ms")
    if args.json:
        print(json.dumps({"sweep_per_s": round(sweep["sweep_per_s"], 1),
                          "raw_per_s": round(sweep["raw_per_s"], 1), "sweep_ratio": round(ratio, 3),
                          "pay_to_submit_p50_ms": round(p50, 1), "pay_to_submit_p99_ms": round(p99, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
