"""`place` with 100,000 contracts in the store against `place` with an empty contract book,
in one run: the contract is a primary-key lookup, so the ratio stays near 1.

Two workspaces made by `certflow init`: one whose contracts are only config.toml's seeds,
one with ``--contracts`` contracts put into the store through ``engine.contracts.put_many``
(the path `certflow contract import` takes). Both place the same number of orders
(each for its own site), alternating in rounds so both see the same machine noise.
Then a contract of the big book is suspended through a second Engine and the first
places on it again, without restart: that order must be rejected.

    python bench/contracts.py --contracts 100000 --orders 300 [--json]

ratio = places/s with the big book / places/s with the empty one.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from workflow import config as config_mod
from workflow.clock import MovableClock
from workflow.engine import Engine
from workflow.ops.workspace import init_workspace

ORDER = dict(organization="Example Corp.", locality="Shinjuku-ku", prefecture="Tokyo",
             country="JP", email="owner@example.jp")
START = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _engine(directory: Path) -> Engine:
    path = init_workspace(directory)
    return Engine(config_mod.load(path), MovableClock(START))


def fill(engine: Engine, n: int) -> float:
    """Put ``n`` contracts (one transaction); returns contracts/s."""
    plans = ("lite", "basic", "pro", "secure", "advance", "expert")
    items = [(f"bench:{i}", f"K-{i:06d}", {"plan": plans[i % len(plans)]}) for i in range(n)]
    start = time.perf_counter()
    engine.contracts.put_many(items, actor="bench")
    return n / (time.perf_counter() - start)


def places(engine: Engine, contracts: list[str], first: int, n: int) -> float:
    """Seconds for ``n`` places, each for its own site on a contract drawn from ``contracts``."""
    rng = random.Random(first)
    start = time.perf_counter()
    for i in range(first, first + n):
        engine.place(common_name=f"s{i}.example.jp", contract=rng.choice(contracts), **ORDER)
    return time.perf_counter() - start


def measure(n_contracts: int, n_orders: int, rounds: int = 6) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        small, big = _engine(Path(tmp) / "small"), _engine(Path(tmp) / "big")
        fill_rate = fill(big, n_contracts)
        ids = [f"K-{i:06d}" for i in range(n_contracts)]
        for e, pool in ((small, ["C-1001"]), (big, ids)):  # warm-up: the Public Suffix List
            places(e, pool, 10**6, 5)
        per_round = max(1, n_orders // rounds)
        t_small = t_big = 0.0
        for r in range(rounds):
            t_small += places(small, ["C-1001"], r * per_round, per_round)
            t_big += places(big, ids, r * per_round, per_round)
        other = Engine(config_mod.load(big.config.path), MovableClock(START))
        other.contracts.put(ids[0], status="suspended", actor="bench")
        seen = big.place(common_name="late.example.jp", contract=ids[0], **ORDER).state
        count = len(big.contracts.list())
        for e in (small, big, other):
            e.close()
    total = per_round * rounds
    return {"contracts": count, "orders": total, "fill_per_s": round(fill_rate, 1),
            "empty_book_places_per_s": round(total / t_small, 1),
            "big_book_places_per_s": round(total / t_big, 1),
            "ratio": round(t_small / t_big, 3),
            "change_seen_without_restart": seen == "rejected"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contracts", type=int, default=100_000)
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = measure(args.contracts, args.orders)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"place with {result['contracts']:,} contracts {result['big_book_places_per_s']:,.0f}/s, "
              f"with an empty book {result['empty_book_places_per_s']:,.0f}/s, ratio "
              f"{result['ratio']:.2f}; contracts put {result['fill_per_s']:,.0f}/s; a suspension "
              f"seen without restart: {result['change_seen_without_restart']}")


if __name__ == "__main__":
    main()
