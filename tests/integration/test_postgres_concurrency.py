"""Several engines on one PostgreSQL at once (as daemons on several hosts are): the
deadline sweep and the renewal opener act once per order; a conflict is run again."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from support.helpers import ORDER, configure
from support.postgres import migrate
from workflow import config as config_mod
from workflow.clock import MovableClock
from workflow.effects import deadlines
from workflow.effects.daemon import Daemon
from workflow.effects.renewal import open_renewals
from workflow.engine import Engine
from workflow.errors import StoreUnavailable
from workflow.store.conflicts import retry_conflicts


@pytest.fixture
def engines(workspace, pg_url, clock):
    migrate(pg_url)
    configure(workspace, {"store.url": pg_url, "renewal.auto_pay": False})
    made = [Engine(config_mod.load(workspace), MovableClock(clock.now())) for _ in range(3)]
    yield made
    for e in made:
        e.close()


def _at_once(engines, job) -> list:
    """``job(engine)`` on every engine in its own thread, started together."""
    results, start = [None] * len(engines), threading.Barrier(len(engines))

    def run(i: int) -> None:
        start.wait()
        results[i] = job(engines[i])
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_three_sweeps_at_once_expire_each_order_once(engines):
    first = engines[0]
    ids = []
    for i in range(30):
        o = first.place(**{**ORDER, "common_name": f"www.slow{i}.example.jp", "validation": "email"})
        first.fire(o.id, "pay")
        ids.append(o.id)
    Daemon(first).run_once()  # to awaiting_approval, 10-day deadline set
    assert {first.get(i).state for i in ids} == {"awaiting_approval"}
    for e in engines:
        e.clock.advance(timedelta(days=11))
    fired = _at_once(engines, lambda e: deadlines.sweep(e, batch=4))
    assert sum(fired) == len(ids)
    for i in ids:
        assert [ev.trigger for ev in first.history(i)].count("expire") == 1
        assert first.get(i).state == "cancelled"


def test_three_renewal_openers_at_once_open_one_renewal_each(engines):
    first = engines[0]
    ids = []
    for i in range(5):
        o = first.place(**{**ORDER, "common_name": f"www.renew{i}.example.jp"})
        first.fire(o.id, "pay")
        ids.append(o.id)
    Daemon(first).run_once()
    assert {first.get(i).state for i in ids} == {"installed"}
    for e in engines:
        e.clock.advance(timedelta(days=400))
    opened = _at_once(engines, open_renewals)
    assert sorted(sum(opened, [])) == sorted(o.id for o in first.list() if o.renewal_of)
    renewed = [o.renewal_of for o in first.list() if o.renewal_of]
    assert sorted(renewed) == sorted(ids)  # one renewal per order, none twice


def test_a_conflict_is_run_again_and_other_conditions_are_not():
    calls = []

    @retry_conflicts
    def command(condition: str | None):
        calls.append(condition)
        if len(calls) < 3 and condition:
            raise StoreUnavailable(condition, "postgresql://db")
        return "done"
    assert command("conflict") == "done" and len(calls) == 3
    calls.clear()
    with pytest.raises(StoreUnavailable):
        command("unreachable")
    assert len(calls) == 1
