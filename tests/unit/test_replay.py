"""Replay: rebuild every order's state from its events, verify it against the stored
rows, and try a changed lifecycle against real histories. Plus the embedded library API."""
from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from support.helpers import ORDER, ROOT, cli_json, run_cli
from states import LIFECYCLE
from workflow import (CertflowError, ConcurrencyError, Engine, InvalidTransition, NotFound,
                      ValidationError)
from workflow.effects.daemon import Daemon
from workflow.history.replay import Folder, replay_rows


@pytest.fixture
def workspace(workspace_both):
    return workspace_both


NO_EXPIRE_MODULE = """
import dataclasses, states
NO_EXPIRE = dataclasses.replace(states.LIFECYCLE, transitions=tuple(
    t for t in states.LIFECYCLE.transitions if t.trigger != "expire"))
"""


def replay_json(config, *args):
    proc = run_cli(config, "replay", *args, "--json")
    return proc.returncode, {r["id"]: r for r in json.loads(proc.stdout)}


def test_verify_passes_then_names_the_tampered_order_then_passes_after_repair(population):
    code, rows = replay_json(population.config, "--all", "--verify")
    assert code == 0
    assert set(rows) == set(population.all)
    assert all(r["ok"] and r["error"] is None for r in rows.values())
    assert {i: rows[i]["state"] for i in population.all} == {
        **{i: "installed" for i in population.installed},
        **{i: "cancelled" for i in population.expired + population.cancelled},
        **{i: "rejected" for i in population.rejected},
        **{i: "ordered" for i in population.in_flight}}

    victim = population.installed[1]
    population.sql("UPDATE orders SET state = 'issued' WHERE id = ?", (victim,))
    code, rows = replay_json(population.config, "--all", "--verify")
    assert code != 0
    assert [i for i, r in rows.items() if not r["ok"]] == [victim]
    assert "state stored 'issued', replayed 'installed'" in rows[victim]["error"]
    text = run_cli(population.config, "replay", "--all", "--verify")
    assert text.returncode == 1
    assert victim in text.stdout
    assert not any(other in text.stdout for other in population.all if other != victim)

    population.sql("UPDATE orders SET state = 'installed' WHERE id = ?", (victim,))
    code, rows = replay_json(population.config, "--all", "--verify")
    assert code == 0 and all(r["ok"] for r in rows.values())


def test_verify_catches_a_changed_deadline_and_a_missing_event(population):
    waiting_id = population.in_flight[0]
    installed_id = population.installed[0]
    population.sql("UPDATE orders SET version = version + 1 WHERE id = ?", (waiting_id,))
    population.sql("DELETE FROM events WHERE order_id = ? AND seq = 3", (installed_id,))
    code, rows = replay_json(population.config, "--all", "--verify")
    assert code == 1
    assert sorted(i for i, r in rows.items() if not r["ok"]) == sorted([waiting_id, installed_id])
    assert "version stored 2, replayed 1" in rows[waiting_id]["error"]
    assert rows[installed_id]["error"] == "event 3 missing (next is 4)"


def test_a_lifecycle_without_expire_refuses_exactly_the_expired_orders(population, tmp_path):
    (tmp_path / "what_if.py").write_text(NO_EXPIRE_MODULE)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = run_cli(population.config, "replay", "--states", "what_if:NO_EXPIRE", "--all", "--json",
                   env=env)
    assert proc.returncode == 1, proc.stderr
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    refused = {i: r for i, r in rows.items() if not r["ok"]}
    assert sorted(refused) == sorted(population.expired)
    (expired_id,) = population.expired
    assert refused[expired_id]["error"] == \
        "event 5 (expire: awaiting_approval → cancelled) is refused by this lifecycle"
    assert refused[expired_id]["state"] == "awaiting_approval"  # where the history stopped

    # the stock lifecycle, by the same route, accepts everything
    proc = run_cli(population.config, "replay", "--states", "states:LIFECYCLE", "--all", "--json")
    assert proc.returncode == 0 and all(r["ok"] for r in json.loads(proc.stdout))


def test_replay_named_orders_and_refusals(population):
    picked = [population.installed[0], population.rejected[0]]
    rows = cli_json(population.config, "replay", *picked, "--verify")
    assert [r["id"] for r in rows] == sorted(picked)
    assert [r["state"] for r in rows] == [("installed" if r["id"] in population.installed
                                          else "rejected") for r in rows]

    unknown = run_cli(population.config, "replay", "20260101-deadbeef")
    assert unknown.returncode == 2
    assert "20260101-deadbeef" in unknown.stderr
    nothing = run_cli(population.config, "replay")
    assert nothing.returncode == 2 and "--all" in nothing.stderr
    bad_ref = run_cli(population.config, "replay", "--all", "--states", "no_such_module:X")
    assert bad_ref.returncode == 2 and "no_such_module" in bad_ref.stderr


def test_hold_and_resume_restore_the_approval_deadline(engine, clock):
    o = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(o.id, "pay")
    Daemon(engine).run_once()
    waiting = engine.get(o.id)
    assert waiting.state == "awaiting_approval" and waiting.deadline_at
    clock.advance(timedelta(days=2))
    with engine.command() as tx:  # the way the dispatcher holds an order
        engine.apply(tx, engine.load(tx, o.id), "hold", {"reason": "CA unreachable"}, "effect",
                     engine.now())
    clock.advance(timedelta(days=1))
    resumed = engine.fire(o.id, "resume")
    assert resumed.deadline_at == waiting.deadline_at
    rows = replay_rows(engine.store, LIFECYCLE, None, verify=True)
    assert rows == [{"id": o.id, "ok": True, "state": "awaiting_approval", "error": None}]


def test_fold_refuses_broken_histories():
    folder = Folder(LIFECYCLE)
    at = "2026-12-01T00:00:00Z"
    happy = [(1, at, "place", "new", "ordered"), (2, at, "pay", "ordered", "paid"),
             (3, at, "submit", "paid", "submitted"),
             (4, at, "ca_accept", "submitted", "awaiting_approval")]
    f = folder.fold(happy)
    assert (f.state, f.version, f.deadline_at, f.error) == \
        ("awaiting_approval", 4, "2026-12-11T00:00:00Z", None)
    assert folder.fold(happy[:1] + happy[2:]).error == "event 2 missing (next is 3)"
    wrong_source = happy[:2] + [(3, at, "submit", "ordered", "submitted")]
    assert folder.fold(wrong_source).error == "event 3 (submit) starts from ordered but the order was paid"
    held_elsewhere = happy + [(5, at, "hold", "awaiting_approval", "on_hold"),
                              (6, at, "resume", "on_hold", "paid")]
    assert folder.fold(held_elsewhere).error == \
        "event 6 (resume → paid) but the order was held from awaiting_approval"


# --- the embedded library ---------------------------------------------------------------

def test_library_api(workspace):
    engine = Engine.from_config(str(workspace))
    try:
        order = engine.place(**ORDER)
        assert order.state == "ordered" and order.version == 1
        assert order.sans == ("example.jp",)  # www.<domain> also gets the bare domain
        paid = engine.fire(order.id, "pay")
        assert paid.state == "paid" and paid.version == 2
        assert engine.get(order.id) == paid
        assert [o.id for o in engine.list()] == [order.id]
        assert [o.id for o in engine.list(state="paid")] == [order.id]
        assert engine.list(state="installed") == []
        history = engine.history(order.id)
        assert [(e.seq, e.trigger, e.source, e.dest) for e in history] == \
            [(1, "place", "new", "ordered"), (2, "pay", "ordered", "paid")]

        with pytest.raises(ValidationError) as bad:
            engine.place(**{**ORDER, "country": "Japan"})
        assert bad.value.field == "country"
        with pytest.raises(ValidationError) as bad_state:
            engine.list(state="done")
        assert bad_state.value.field == "state"
        with pytest.raises(NotFound) as missing:
            engine.get("20260101-deadbeef")
        assert missing.value.key == "20260101-deadbeef"
        with pytest.raises(NotFound):
            engine.fire("20260101-deadbeef", "pay")
        with pytest.raises(InvalidTransition) as invalid:
            engine.fire(order.id, "install")
        assert (invalid.value.order_id, invalid.value.state, invalid.value.trigger) == \
            (order.id, "paid", "install")
        with pytest.raises(ConcurrencyError) as stale:
            engine.fire(order.id, "cancel", expected_version=1)
        assert (stale.value.expected, stale.value.found) == (1, 2)
        for exc in (bad.value, missing.value, invalid.value, stale.value):
            assert isinstance(exc, CertflowError)
        # refusals wrote nothing
        assert engine.get(order.id).version == 2
        assert len(engine.list()) == 1
        assert len(engine.history(order.id)) == 2
    finally:
        engine.close()
