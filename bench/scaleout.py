"""The scale-out curve: 1, 2 and 4 ``certflow daemon`` processes on one PostgreSQL
draining the same number of paid orders with the local CA.

    python bench/scaleout.py --store postgresql://USER@HOST:PORT/DB [--orders 2000]
                             [--daemons 1,2,4] [--json]

For each daemon count: a fresh database beside the one named (CREATE DATABASE
privilege needed; dropped afterwards), a workspace on the embedded defaults (local CA,
file validation, mail folder), ``--orders`` orders placed and paid through the library
(not timed), then the daemons start and the clock runs until every order is installed.
orders/s for each count, and speedup = orders/s / orders/s of the first count (goal:
4 daemons >= 3x one). Every run is checked: each order installed with exactly one CA
application, one ``install`` event and no customer mail twice.

The local CA keeps its applications in a SQLite file of its own in the workspace: all
daemons of one host share it (short ``BEGIN IMMEDIATE`` writes). The key and CSR
(RSA-2048) and the CA's signature are CPU work: on a machine with fewer cores than
daemons the curve flattens at the core count (``cpus`` in the output says how many).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow import config as config_mod  # noqa: E402
from workflow.engine import Engine  # noqa: E402
from workflow.ops.workspace import init_workspace  # noqa: E402

ORDER = dict(organization="Example Corp.", locality="Shinjuku-ku", prefecture="Tokyo",
             country="JP", plan="basic", contract="C-1001", email="owner@example.jp")


def _database(url: str, create: bool, name: str | None = None) -> str:
    import psycopg
    head = url.rpartition("/")[0]
    with psycopg.connect(url, autocommit=True) as conn:
        name = name or f"certflow_scaleout_{uuid.uuid4().hex[:8]}"
        conn.execute(f'CREATE DATABASE "{name}"' if create else
                     f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return f"{head}/{name}"


def _count(engine: Engine, state: str) -> int:
    return engine.store.state_counts().get(state, 0)


def run(url: str, orders: int, daemons: int, work: Path) -> dict:
    db_url = _database(url, create=True)
    try:
        config = init_workspace(work / f"ws{daemons}")
        # the CA is asked again after 2 s, not 60: the run measures work, not waiting
        config.write_text(config.read_text().replace("[store]", f'[store]\nurl = "{db_url}"', 1)
                          .replace("poll_seconds = 60", "poll_seconds = 2", 1))
        engine = Engine(config_mod.load(config))
        ids = []
        for i in range(orders):
            o = engine.place(common_name=f"www.shop{i}.example.jp", **ORDER)
            engine.fire(o.id, "pay")
            ids.append(o.id)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-m", "workflow", "--config", str(config),
                                   "daemon"], cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(daemons)]
        start = time.perf_counter()
        try:
            while _count(engine, "installed") < orders:
                if any(p.poll() is not None for p in procs):
                    raise SystemExit("a daemon exited early")
                time.sleep(0.2)
            elapsed = time.perf_counter() - start
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=120)
        problems = _check(engine, config, ids)
        engine.close()
        return {"daemons": daemons, "orders": orders, "seconds": round(elapsed, 2),
                "orders_per_s": round(orders / elapsed, 2), "problems": problems}
    finally:
        _database(url, create=False, name=db_url.rpartition("/")[2])


def _check(engine: Engine, config: Path, ids: list[str]) -> list[str]:
    """No order done twice: one CA application, one install event, no mail twice."""
    import email
    import email.policy
    out = []
    proc = subprocess.run([sys.executable, "-m", "workflow", "--config", str(config), "ca",
                           "applications", "--json"], capture_output=True, text=True,
                          cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    applications = Counter(a["order_id"] for a in json.loads(proc.stdout))
    out += [f"{i}: {applications[i]} CA applications" for i in ids if applications[i] != 1]
    for i in ids:
        installs = [e for e in engine.history(i) if e.trigger == "install"]
        if len(installs) != 1:
            out.append(f"{i}: {len(installs)} install events")
    mails = Counter()
    for p in (config.parent / "var/mail").glob("*.eml"):
        m = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        mails[(m["X-Certflow-Order"], m["X-Certflow-Template"], m["To"])] += 1
    out += [f"{k}: mailed {n} times" for k, n in mails.items() if n > 1]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", metavar="URL", required=True,
                    help="a PostgreSQL database on the server to use (postgresql://…)")
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--daemons", default="1,2,4", help="daemon counts, comma-separated")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.daemons.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run(args.store, args.orders, n, Path(tmp)) for n in counts]
    base = runs[0]["orders_per_s"]
    for r in runs:
        r["speedup"] = round(r["orders_per_s"] / base, 2)
    result = {"cpus": os.cpu_count(), "runs": runs,
              "ok": all(not r["problems"] for r in runs)}
    if args.json:
        print(json.dumps(result))
    else:
        for r in runs:
            print(f"{r['daemons']} daemon(s): {r['orders']} orders in {r['seconds']} s, "
                  f"{r['orders_per_s']} orders/s, x{r['speedup']}"
                  + (f", PROBLEMS: {r['problems'][:3]}" if r["problems"] else ""))
        print(f"({os.cpu_count()} CPUs; no order done twice: {result['ok']})")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
