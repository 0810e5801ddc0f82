"""The engine through its library API, on a real SQLite store (no mocks)."""
import multiprocessing as mp
from datetime import timedelta

import pytest

from support.helpers import ORDER
from workflow import CertflowError, Engine
from workflow.effects.daemon import Daemon
from workflow.errors import ConcurrencyError, InvalidTransition, NotFound, ValidationError


@pytest.fixture
def workspace(workspace_both):
    return workspace_both


def rows(engine, table):
    return engine.store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_place_records_an_ordered_order_with_sans(engine):
    o = engine.place(**ORDER)
    assert (o.state, o.version, o.sans) == ("ordered", 1, ("example.jp",))
    assert [(e.seq, e.trigger, e.source, e.dest) for e in engine.history(o.id)] == \
        [(1, "place", "new", "ordered")]
    outbox = engine.store.conn.execute("SELECT effect, param, idem_key FROM outbox").fetchall()
    assert [(r[0], r[1]) for r in outbox] == [("notify", "order_received")]
    assert outbox[0][2] == f"{o.id}:1:notify:order_received"


def test_bad_input_writes_nothing(engine):
    for field, value in (("country", "JPN"), ("plan", "gold"), ("common_name", "-x.jp")):
        with pytest.raises(ValidationError) as err:
            engine.place(**{**ORDER, field: value})
        assert err.value.field == field
    assert rows(engine, "orders") == rows(engine, "events") == rows(engine, "outbox") == 0


@pytest.mark.parametrize("contract, reason", [("C-9001", "not active"), ("C-2001", "fixed IP")])
def test_orders_that_cannot_be_applied_for_end_rejected_with_reason(engine, contract, reason):
    plan = engine.config.contracts[contract]["plan"]
    o = engine.place(**{**ORDER, "contract": contract, "plan": plan})
    assert o.state == "rejected" and reason in o.reason
    assert [e.trigger for e in engine.history(o.id)] == ["place"]


def test_invalid_transition_writes_no_history(engine):
    o = engine.place(**ORDER)
    engine.fire(o.id, "pay")
    with pytest.raises(InvalidTransition) as err:
        engine.fire(o.id, "pay")
    assert (err.value.state, err.value.trigger) == ("paid", "pay")
    assert [e.seq for e in engine.history(o.id)] == [1, 2]
    assert engine.get(o.id).version == 2


def test_unknown_order_and_trigger(engine):
    with pytest.raises(NotFound):
        engine.fire("nope", "pay")
    o = engine.place(**ORDER)
    with pytest.raises(InvalidTransition):
        engine.fire(o.id, "teleport")


def test_stale_version_is_a_concurrency_error(engine):
    o = engine.place(**ORDER)
    with pytest.raises(ConcurrencyError) as err:
        engine.fire(o.id, "pay", expected_version=0)
    assert (err.value.expected, err.value.found) == (0, 1)
    assert engine.get(o.id).state == "ordered"


def test_one_except_clause_catches_every_refusal_with_the_values_that_caused_it(engine):
    o = engine.place(**ORDER)
    attempts = [
        (lambda: engine.get("nope"), NotFound, {"what": "order", "key": "nope"}),
        (lambda: engine.fire(o.id, "resume"), InvalidTransition,
         {"order_id": o.id, "state": "ordered", "trigger": "resume"}),
        (lambda: engine.fire(o.id, "pay", expected_version=7), ConcurrencyError,
         {"order_id": o.id, "expected": 7, "found": 1}),
        (lambda: engine.place(**{**ORDER, "country": "JPN"}), ValidationError,
         {"field": "country"}),
    ]
    for attempt, kind, values in attempts:
        try:
            attempt()
        except CertflowError as caught:  # what a host application writes
            assert type(caught) is kind
            assert {name: getattr(caught, name) for name in values} == values
        else:
            pytest.fail(f"{kind.__name__} not raised")
    assert (engine.get(o.id).state, engine.get(o.id).version) == ("ordered", 1)


def test_full_path_with_the_embedded_defaults(engine):
    o = engine.place(**ORDER)
    engine.fire(o.id, "pay")
    Daemon(engine).run_once()
    done = engine.get(o.id)
    assert done.state == "installed", done.reason
    assert [e.seq for e in engine.history(o.id)] == list(range(1, done.version + 1))
    assert [e.trigger for e in engine.history(o.id)] == \
        ["place", "pay", "submit", "ca_accept", "issue", "install"]
    assert done.certificate and len(done.certificate.sha256) == 64
    events = engine.store.conn.execute("SELECT data FROM events WHERE data IS NOT NULL").fetchall()
    assert not any("PRIVATE KEY" in r[0] or "CERTIFICATE" in r[0] for r in events)


def test_cancel_from_awaiting_approval_records_reason(engine, clock):
    o = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(o.id, "pay")
    Daemon(engine).run_once()
    waiting = engine.get(o.id)
    assert waiting.state == "awaiting_approval"
    assert waiting.deadline_at == (clock.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cancelled = engine.fire(o.id, "cancel", reason="customer withdrew")
    assert (cancelled.state, cancelled.reason, cancelled.deadline_at) == \
        ("cancelled", "customer withdrew", None)


def _race(config_path, order_id, barrier, results):
    engine = Engine.from_config(config_path)
    barrier.wait()
    try:
        engine.fire(order_id, "pay", actor=f"proc-{mp.current_process().pid}", expected_version=1)
        results.put("ok")
    except (ConcurrencyError, InvalidTransition) as exc:
        results.put(type(exc).__name__)


def test_two_processes_pay_at_once_one_wins(workspace):
    engine = Engine.from_config(str(workspace))
    o = engine.place(**ORDER)
    ctx = mp.get_context("spawn")
    for _ in range(3):
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(workspace), o.id, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        outcomes = sorted(results.get(timeout=5) for _ in procs)
        assert outcomes in (["ConcurrencyError", "ok"], ["InvalidTransition", "ok"]), outcomes
        assert [e.trigger for e in engine.history(o.id)] == ["place", "pay"]
        # a fresh order (for another site: one order in flight per site) for the next round
        o = engine.place(**{**ORDER, "common_name": f"r{len(engine.list())}.example.jp"})


@pytest.mark.sqlite_only
def test_wal_and_full_sync(engine):
    conn = engine.store.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert engine.store.schema_version() >= 1
