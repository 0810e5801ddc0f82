"""The operator's commands at scale (issue 19), against the cost of starting certflow.

    python bench/scale.py --orders 1000000 [--due 10000] [--json] [--keep DIR]

Builds ``--orders`` orders in realistic states (most installed with a certificate, some
awaiting approval with live deadlines, cancelled, rejected, on hold, just ordered) with
their histories, CSRs, certificates, searchable names and outbox rows, written in bulk by
a direct store writer (this script's SQL, on the real schema); ``--due`` of the orders
awaiting approval are past their deadline. Then it runs each command as its own
``certflow`` process and prints its seconds and peak RSS:

  order list --limit 100 | order list --cn (one rare match) | order list --json
  (streamed, every row) | status | order show | replay --all --verify | export | one
  daemon deadline pass (the daemon's deadline job, in a process of its own)

The baseline, measured in the same run, is ``certflow --help`` (interpreter and import
cost): ``ratio`` = seconds / baseline seconds. The issue's targets at 1,000,000 orders
are printed beside the figures, reported, not enforced.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow.clock import iso  # noqa: E402
from workflow.store.names import search_names  # noqa: E402
from workflow.store.schema import CERTIFICATE_COLUMNS, EVENT_COLUMNS, ORDER_COLUMNS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RARE_CN = "www.rare-needle-4711.example.jp"
CHUNK = 20000
#: (state, share, history) — every history is a path of states.LIFECYCLE
HAPPY = (("place", "new", "ordered"), ("pay", "ordered", "paid"),
         ("submit", "paid", "submitted"), ("ca_accept", "submitted", "awaiting_approval"),
         ("issue", "awaiting_approval", "issued"), ("install", "issued", "installed"))
MIX = (("installed", 0.72, HAPPY),
       ("awaiting_approval", 0.10, HAPPY[:4]),
       ("cancelled", 0.08, HAPPY[:4] + (("expire", "awaiting_approval", "cancelled"),)),
       ("rejected", 0.03, (("place", "new", "rejected"),)),
       ("ordered", 0.05, HAPPY[:1]),
       ("on_hold", 0.02, HAPPY[:3] + (("hold", "submitted", "on_hold"),)))
#: targets at 1,000,000 orders (seconds, MB)
TARGETS = {"order list --limit 100": (0.5, None), "order list --cn": (0.5, None),
           "status": (0.5, None), "order list --json": (None, 150),
           "daemon deadline pass": (2.0, 150)}
DEADLINE_PASS = """
import sys, time
from workflow.engine import Engine
from workflow.effects.daemon import Daemon
engine = Engine.from_config(sys.argv[1])
daemon = Daemon(engine)
start = time.perf_counter()
fired = daemon.deadlines()
print(fired, time.perf_counter() - start)
"""


#: the store's part of the targeted commands, timed inside one process (best of 3), so
#: that interpreter start-up and imports, the same for every command, are not counted
QUERIES = """
import json, sys, time
from workflow.engine import Engine
engine = Engine.from_config(sys.argv[1])
def best(fn):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times), 4)
print(json.dumps({
    "order list --limit 100": best(lambda: list(engine.find(limit=100))),
    "order list --cn": best(lambda: list(engine.find(cn="rare-needle-4711", limit=100))),
    "status": best(engine.summary),
    "order show": best(lambda: (engine.get(sys.argv[2]), engine.explain(sys.argv[2]))),
}))
"""


def _pem(kind: str, size: int, rng: random.Random) -> str:
    """PEM-shaped text of a real object's size (the store keeps it as text)."""
    body = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                   for _ in range(size))
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n"


def _plan(orders: int, due: int) -> list[str]:
    states = []
    for state, share, _ in MIX:
        states += [state] * int(orders * share)
    states += ["installed"] * (orders - len(states))
    rng = random.Random(7)
    rng.shuffle(states)
    waiting = [i for i, s in enumerate(states) if s == "awaiting_approval"]
    if len(waiting) < due:
        raise SystemExit(f"--due {due} exceeds the {len(waiting)} orders awaiting approval")
    return states


def build(db_path: str, orders: int, due: int, now: datetime) -> dict:
    """Write the orders, events, certificates, names and outbox rows in bulk."""
    import sqlite3
    rng = random.Random(42)
    csr, cert = _pem("CERTIFICATE REQUEST", 1270, rng), _pem("CERTIFICATE", 1700, rng)
    history = {state: path for state, _, path in MIX}
    states = _plan(orders, due)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # a throw-away database: speed over durability
    ins = {t: f"INSERT INTO {t} ({', '.join(c)}) VALUES ({', '.join('?' * len(c))})"
           for t, c in (("orders", ORDER_COLUMNS), ("events", EVENT_COLUMNS),
                        ("certificates", CERTIFICATE_COLUMNS))}
    outbox_sql = ("INSERT INTO outbox (order_id, seq, state, effect, param, idem_key, bound, "
                  "status, attempts, next_at, created_at, done_at, last_error) "
                  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
    overdue_left, sample = due, {}
    for start in range(0, orders, CHUNK):
        rows, events, certs, names, outbox = [], [], [], [], []
        for i in range(start, min(start + CHUNK, orders)):
            state = states[i]
            created = now - timedelta(days=rng.uniform(0, 365))
            if state == "awaiting_approval":  # accepted 0-10 days ago, or overdue
                overdue = overdue_left > 0
                overdue_left -= overdue
                # a live deadline is at least a day away: a long run does not make it due
                accepted = now - timedelta(days=rng.uniform(10.01, 11) if overdue
                                           else rng.uniform(0, 9))
                created = min(created, accepted - timedelta(hours=1))
            oid = f"{created:%Y%m%d}-{rng.getrandbits(64):016x}"
            cn = RARE_CN if i == orders // 2 else f"www.shop{i}.example.jp"
            sans = json.dumps([cn[4:]])
            path = history[state]
            stamps = [created + timedelta(minutes=5 * n) for n in range(len(path))]
            if state == "awaiting_approval":
                stamps[-1] = accepted
            deadline = iso(stamps[-1] + timedelta(days=10)) if state == "awaiting_approval" \
                else None
            row = {"id": oid, "state": state, "version": len(path), "entered_seq": len(path),
                   "common_name": cn, "sans": sans, "plan": "basic", "contract":
                   "C-1001", "validation": "email" if i % 3 else "file",
                   "approver": f"admin@{cn[4:]}" if i % 3 else None,
                   "email": f"owner{i}@example.jp", "language": "ja",
                   "organization": "Example Corp.", "unit": None, "locality": "Shinjuku-ku",
                   "prefecture": "Tokyo", "country": "JP", "renewal_of": None,
                   "csr": csr if len(path) >= 3 else None,
                   "reason": {"cancelled": "the domain administrator did not approve within "
                              "10 days", "rejected": "hosting contract is not active",
                              "on_hold": "submit_ca failed: CA unreachable"}.get(state),
                   "held_from": "submitted" if state == "on_hold" else None,
                   "held_deadline": None, "deadline_at": deadline,
                   "deadline_trigger": "expire" if deadline else None,
                   "data": json.dumps({"held_entered_seq": 3} if state == "on_hold" else
                                      {"application_id": f"la-{i:016x}"}),
                   "created_at": iso(created), "updated_at": iso(stamps[-1])}
            rows.append(tuple(row[c] for c in ORDER_COLUMNS))
            names += [(oid, n) for n in search_names(cn, sans)]
            for seq, ((trigger, source, dest), at) in enumerate(zip(path, stamps), start=1):
                events.append((oid, seq, iso(at), trigger, source, dest, "bench", None))
            last = iso(stamps[-1])
            if state == "installed":
                issued = stamps[-1]
                certs.append((oid, f"{i:032x}", iso(issued), iso(issued + timedelta(days=199)),
                              f"{i:064x}", sans, cert, cert, iso(issued)))
                outbox.append((oid, len(path), state, "notify", "installed",
                               f"{oid}:{len(path)}:notify:installed", 0, "done", 1, last, last,
                               last, None))
            elif state == "awaiting_approval":
                outbox.append((oid, 4, state, "poll_ca", None, f"{oid}:4:poll_ca", 1, "pending",
                               0, iso(now + timedelta(minutes=rng.uniform(1, 60))), last, None,
                               None))
            elif state == "cancelled" and i % 500 == 0:  # a mail server that was down
                outbox.append((oid, 5, state, "notify", "cancelled",
                               f"{oid}:5:notify:cancelled", 0, "failed", 5, last, last, last,
                               "SMTP 451 try again later"))
            sample.setdefault(state, oid)
        conn.execute("BEGIN")
        conn.executemany(ins["orders"], rows)
        conn.executemany(ins["events"], events)
        conn.executemany(ins["certificates"], certs)
        conn.executemany("INSERT INTO order_names (order_id, name) VALUES (?, ?)", names)
        conn.executemany(outbox_sql, outbox)
        conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sample


#: runs the command as its child and reports the child's CPU seconds and peak RSS: a
#: process forked from this one would count this process's memory in its own peak
LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:]).returncode
wall = time.perf_counter() - start
u = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(f"\\nRUSAGE {wall} {u.ru_utime + u.ru_stime} {u.ru_maxrss}\\n")
sys.exit(code)
"""


def measure(config: Path, args: list[str], count_rows: bool = False,
            script: str | None = None) -> dict:
    """Run one certflow process: wall and CPU seconds, peak RSS (MB), what it printed."""
    cmd = ([sys.executable, "-c", script, str(config), *args] if script else
           [sys.executable, "-m", "workflow", "--config", str(config), *args])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    rows, tail = 0, b""
    for line in proc.stdout:
        if count_rows and line.startswith(b"{"):
            rows += 1
        tail = line if line.strip() else tail
    err = proc.stderr.read().decode()
    proc.wait()
    head, _, usage = err.rpartition("RUSAGE ")
    wall, cpu, rss_kb = usage.split()
    return {"seconds": round(float(wall), 3), "cpu_seconds": round(float(cpu), 3),
            "peak_rss_mb": round(int(rss_kb) / 1024, 1), "exit": proc.returncode, "rows": rows,
            "last_line": tail.decode().strip()[:2000], "stderr": head.strip()[-300:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--due", type=int, default=10_000,
                    help="orders awaiting approval past their deadline (the deadline pass)")
    ap.add_argument("--keep", metavar="DIR", help="build the workspace in DIR and keep it")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    from workflow.engine import Engine
    from workflow.ops.workspace import init_workspace
    from workflow import config as config_mod

    base = Path(a.keep or tempfile.mkdtemp(prefix="certflow-scale-"))
    config = init_workspace(base / "ws")
    Engine(config_mod.load(config)).close()  # the schema, migrated
    db_path = str(base / "ws/var/data/certflow.db")
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    sample = build(db_path, a.orders, a.due, now)
    build_s = time.perf_counter() - started
    print(f"built {a.orders} orders in {build_s:.1f} s", file=sys.stderr, flush=True)
    show_id = sample["awaiting_approval"]

    results = {"baseline (certflow --help)": measure(config, ["--help"])}
    base_s = results["baseline (certflow --help)"]["seconds"]
    export_to = str(base / "export.jsonl")
    plan = [("order list --limit 100", ["order", "list", "--limit", "100"], False),
            ("order list --cn", ["order", "list", "--cn", "rare-needle-4711"], False),
            ("order list --json", ["order", "list", "--json"], True),
            ("status", ["status"], False),
            ("order show", ["order", "show", show_id], False),
            ("replay --all --verify", ["replay", "--all", "--verify", "--json"], False),
            ("export", ["export", export_to], False)]
    for name, args, count in plan:
        results[name] = measure(config, args, count_rows=count)
        print(f"  {name}: {results[name]['seconds']} s", file=sys.stderr, flush=True)
    queries = measure(config, [show_id], script=QUERIES)
    for name, seconds in json.loads(queries["last_line"] or "{}").items():
        results[name]["query_seconds"] = seconds
    results["daemon deadline pass"] = measure(config, [], script=DEADLINE_PASS)
    fired, inner = results["daemon deadline pass"]["last_line"].split()
    results["daemon deadline pass"].update(fired=int(fired), pass_seconds=round(float(inner), 3))
    for name, r in results.items():
        r["ratio"] = round(r["seconds"] / base_s, 2) if base_s else None

    problems = [f"{n}: exit {r['exit']} {r['stderr']}" for n, r in results.items() if r["exit"]]
    if results["order list --json"]["rows"] != a.orders:
        problems.append(f"order list --json streamed {results['order list --json']['rows']} "
                        f"rows of {a.orders}")
    if results["daemon deadline pass"]["fired"] != a.due:
        problems.append(f"deadline pass fired {results['daemon deadline pass']['fired']} "
                        f"of {a.due}")
    out = {"orders": a.orders, "due": a.due, "build_seconds": round(build_s, 1),
           "database_mb": round(os.path.getsize(db_path) / 2**20, 1),
           "commands": {n: {k: r[k] for k in ("seconds", "cpu_seconds", "peak_rss_mb", "ratio")} |
                        {k: r[k] for k in ("pass_seconds", "query_seconds") if k in r}
                        for n, r in results.items()},
           "targets_at_1m": {n: {"seconds": s, "peak_rss_mb": m} for n, (s, m) in TARGETS.items()},
           "problems": problems}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{a.orders:,} orders built in {out['build_seconds']} s "
              f"({out['database_mb']} MB); baseline certflow --help {base_s} s")
        print(f"{'command':28} {'seconds':>8} {'cpu s':>8} {'peak MB':>8} {'x base':>7}  "
              "target at 1M")
        for name, r in out["commands"].items():
            s, m = TARGETS.get(name, (None, None))
            target = " ".join(t for t in (f"< {s} s" if s else "", f"< {m} MB" if m else "") if t)
            print(f"{name:28} {r['seconds']:>8} {r['cpu_seconds']:>8} {r['peak_rss_mb']:>8} "
                  f"{r['ratio']:>7}  {target}")
        print(f"(the deadline pass itself, inside its process: "
              f"{out['commands']['daemon deadline pass']['pass_seconds']} s)")
        print("the store's part, inside one process (best of 3): " + ", ".join(
            f"{n} {r['query_seconds']} s" for n, r in out["commands"].items()
            if "query_seconds" in r))
        for p in problems:
            print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
