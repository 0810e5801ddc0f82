"""One Prometheus scrape of the daemon's metrics at scale, against the same scrape with
the per-certificate series unbounded, measured in the same run.

    python bench/metrics.py [--orders N] [--certificates N] [--json]

``--orders`` orders (default 200,000) are written straight into a fresh workspace's
store: 80 % installed, 5 % delivered, the rest spread over the other states; every
fifth installed order renews the one before it (the replaced certificate expires
earlier, as after a real renewal), and a few hundred effects wait in the outbox. Then
the exporter's registry is scraped (median of 5) with ``[daemon] metrics_certificates``
at ``--certificates`` (default 1000), and once with it at the number of live
certificates (every live certificate a series). ``ratio`` = bounded seconds / unbounded
seconds; the bytes and series counts show what the bound saves Prometheus.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import generate_latest  # noqa: E402

from workflow import config as config_mod  # noqa: E402
from workflow.clock import iso  # noqa: E402
from workflow.engine import Engine  # noqa: E402
from workflow.ops.exporter import registry_for  # noqa: E402
from workflow.ops.workspace import init_workspace  # noqa: E402
from workflow.store.schema import CERTIFICATE_COLUMNS, ORDER_COLUMNS  # noqa: E402

STATES = (["installed"] * 80 + ["delivered"] * 5 + ["awaiting_approval"] * 5 + ["cancelled"] * 4
          + ["rejected"] * 3 + ["paid", "submitted", "on_hold"])
CSR = "-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * 900 + "\n-----END CERTIFICATE REQUEST-----\n"


def populate(db_path: str, orders: int, now: datetime) -> int:
    """Write ``orders`` orders; returns how many carry a live certificate."""
    rnd = random.Random(19)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    put_order = f"INSERT INTO orders VALUES ({', '.join('?' * len(ORDER_COLUMNS))})"
    put_cert = f"INSERT INTO certificates VALUES ({', '.join('?' * len(CERTIFICATE_COLUMNS))})"
    put_effect = ("INSERT INTO outbox (order_id, seq, state, effect, param, idem_key, bound, status,"
                  " attempts, next_at, created_at) VALUES (?, 1, ?, ?, NULL, ?, 1, 'pending', 0, ?, ?)")
    stamp, live, batch, previous = iso(now), 0, 50_000, None
    for start in range(0, orders, batch):
        order_rows, cert_rows, effect_rows = [], [], []
        for i in range(start, min(start + batch, orders)):
            state, oid = rnd.choice(STATES), f"20260101-{i:016x}"
            renews = state == "installed" and i % 5 == 4
            row = dict.fromkeys(ORDER_COLUMNS)
            row.update(id=oid, state=state, version=6, entered_seq=6, sans="[]", plan="basic",
                       common_name=f"www.site{i}.example.jp", contract=f"C-{i % 5000}",
                       validation="file", data="{}", created_at=stamp, updated_at=stamp,
                       csr=CSR, renewal_of=f"20260101-{i - 1:016x}" if renews else None)
            order_rows.append(tuple(row[c] for c in ORDER_COLUMNS))
            if state in ("installed", "delivered"):
                replaced = i % 5 == 3  # the next order renews it
                age = rnd.uniform(150, 400) if replaced else rnd.uniform(0, 130)
                nb = now - timedelta(days=age)
                cert_rows.append((oid, f"{i:x}", iso(nb), iso(nb + timedelta(days=199)), "0" * 64,
                                  "[]", "PEM" * 300, "", iso(nb)))
                live += 1
            if renews and previous in ("installed", "delivered"):
                live -= 1  # its predecessor's certificate is replaced: no longer live
            previous = state
            if state in ("paid", "submitted") and i % 7 == 0:
                effect_rows.append((oid, state, "submit_ca", f"{oid}:1:submit_ca",
                                    iso(now - timedelta(seconds=i % 900)), stamp))
        conn.execute("BEGIN")
        conn.executemany(put_order, order_rows)
        conn.executemany(put_cert, cert_rows)
        conn.executemany(put_effect, effect_rows)
        conn.execute("COMMIT")
    conn.close()
    return live


def scrape(engine, rounds: int = 5) -> tuple[float, int, int]:
    """(median seconds, bytes, series) of scraping every certflow metric."""
    registry = registry_for(engine.store, engine)
    times, text = [], b""
    for _ in range(rounds):
        started = time.perf_counter()
        text = generate_latest(registry)
        times.append(time.perf_counter() - started)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    return statistics.median(times), len(text), series


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--certificates", type=int, default=1000,
                    help="[daemon] metrics_certificates for the bounded scrape")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="certflow-bench-metrics-") as tmp:
        config_path = init_workspace(Path(tmp) / "ws")
        config = config_mod.load(config_path)
        config["store"]["synchronous"] = "normal"
        Engine(config).close()  # the schema
        built = time.perf_counter()
        live = populate(config["store"]["path"], args.orders, now)
        built = time.perf_counter() - built
        engine = Engine(config)
        config["daemon"]["metrics_certificates"] = args.certificates
        bounded = scrape(engine)
        config["daemon"]["metrics_certificates"] = max(live, 1)
        unbounded = scrape(engine, rounds=1)
        engine.close()
    result = {
        "orders": args.orders, "live_certificates": live, "build_s": round(built, 1),
        "scrape_s": round(bounded[0], 4), "scrape_bytes": bounded[1], "scrape_series": bounded[2],
        "unbounded_scrape_s": round(unbounded[0], 4), "unbounded_bytes": unbounded[1],
        "unbounded_series": unbounded[2], "ratio": round(bounded[0] / unbounded[0], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.orders:,} orders, {live:,} live certificates (built in {built:.1f} s)")
    print(f"scrape, {args.certificates} certificate series: {bounded[0]:.3f} s, "
          f"{bounded[1]:,} bytes, {bounded[2]:,} series")
    print(f"scrape, every live certificate:   {unbounded[0]:.3f} s, {unbounded[1]:,} bytes, "
          f"{unbounded[2]:,} series")
    print(f"ratio bounded/unbounded: {result['ratio']:.3f}; peak RSS {result['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
