"""The daemon's passes in-process (issue 4), on the engine's movable clock: approval
reminders and deadlines to the minute, one order that cannot fire not holding back the
others, deadlines the lifecycle no longer allows."""
from __future__ import annotations

from datetime import timedelta

import pytest

from support import mailfolder
from support.daemon import mails_of
from support.helpers import ORDER
from workflow.clock import parse_iso
from workflow.effects.daemon import Daemon


@pytest.fixture
def workspace(workspace_both):
    return workspace_both


# --- deadlines to the minute, with the engine's movable clock --------------------------


def _paid_email_order(engine, host: str = "www") -> str:
    order = engine.place(**{**ORDER, "validation": "email", "common_name": f"{host}.example.jp"})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "awaiting_approval"
    return order.id


def _reminders(engine, to: str) -> list:
    return mails_of(engine.config.path, "approval_reminder", to=to)


def test_approval_reminders_fire_at_three_and_one_day_before_the_deadline(engine, clock):
    daemon = Daemon(engine)
    order_id = _paid_email_order(engine)
    deadline = parse_iso(engine.get(order_id).deadline_at)
    assert deadline == clock.now() + timedelta(days=10)

    for days, expected in ((3, 1), (1, 2)):
        clock.set(deadline - timedelta(days=days, minutes=1))
        daemon.run_once()
        assert len(_reminders(engine, "admin@example.jp")) == expected - 1
        clock.set(deadline - timedelta(days=days))
        daemon.run_once()
        assert len(_reminders(engine, "admin@example.jp")) == expected
        assert len(_reminders(engine, ORDER["email"])) == expected  # the customer is told too

    clock.set(deadline - timedelta(minutes=1))
    daemon.run_once()
    assert engine.get(order_id).state == "awaiting_approval"
    clock.set(deadline)
    daemon.run_once()
    assert engine.get(order_id).state == "cancelled"
    expired = engine.history(order_id)[-1]
    assert (expired.trigger, parse_iso(expired.at)) == ("expire", deadline)


def test_no_reminder_once_the_order_moved_on(engine, clock):
    daemon = Daemon(engine)
    order_id = _paid_email_order(engine)
    deadline = parse_iso(engine.get(order_id).deadline_at)
    [request] = mails_of(engine.config.path, "approval_request", to="admin@example.jp")

    clock.set(deadline - timedelta(days=5))
    engine.adapters.ca.approve(mailfolder.token_in(request))
    daemon.run_once()
    assert engine.get(order_id).state == "installed"

    clock.set(deadline + timedelta(days=1))
    daemon.run_once()
    assert _reminders(engine, "admin@example.jp") == []
    assert engine.get(order_id).state == "installed"
    dropped = engine.store.conn.execute(
        "SELECT count(*) FROM outbox WHERE order_id = ? AND param = 'approval_reminder' "
        "AND status = 'dropped'", (order_id,)).fetchone()[0]
    assert dropped == 2


def test_reminder_days_are_configurable(tmp_path, clock):
    from support.helpers import make_workspace
    from workflow import config as config_mod
    from workflow.engine import Engine
    config = make_workspace(tmp_path / "ws", {"deadlines.approval_reminder_days": [5]})
    engine = Engine(config_mod.load(config), clock)
    try:
        order_id = _paid_email_order(engine)
        deadline = parse_iso(engine.get(order_id).deadline_at)
        clock.set(deadline - timedelta(days=3))
        Daemon(engine).run_once()
        assert len(_reminders(engine, "admin@example.jp")) == 1
        clock.set(deadline - timedelta(hours=1))
        Daemon(engine).run_once()
        assert len(_reminders(engine, "admin@example.jp")) == 1
    finally:
        engine.close()


# --- the long-running daemon ----------------------------------------------------------


def test_one_order_that_cannot_fire_does_not_hold_back_the_others(engine, clock, caplog):
    from workflow.effects import deadlines
    good, bad = _paid_email_order(engine), _paid_email_order(engine, "shop")
    with engine.store.immediate() as conn:  # damaged data: an event beyond the row's version
        version = conn.execute("SELECT version FROM orders WHERE id = ?", (bad,)).fetchone()[0]
        conn.execute("INSERT INTO events (order_id, seq, at, trigger, source, dest, actor) "
                     "VALUES (?, ?, '2026-12-01T00:00:00Z', 'x', 'x', 'x', 'test')", (bad, version + 1))
    clock.advance(timedelta(days=10))
    assert deadlines.sweep(engine) == 1
    assert engine.get(good).state == "cancelled"
    assert engine.store.conn.execute("SELECT state FROM orders WHERE id = ?",
                                     (bad,)).fetchone()[0] == "awaiting_approval"
    assert f"order {bad} could not fire" in caplog.text
    assert deadlines.sweep(engine) == 0  # asked again next sweep, still refused, still alone


def test_a_deadline_the_lifecycle_no_longer_allows_is_cleared(engine, clock):
    from workflow.effects import deadlines
    order_id = _paid_email_order(engine)
    with engine.store.immediate() as conn:
        conn.execute("UPDATE orders SET deadline_trigger = 'install' WHERE id = ?", (order_id,))
    clock.advance(timedelta(days=10))
    assert deadlines.sweep(engine) == 0
    order = engine.get(order_id)
    assert order.state == "awaiting_approval" and order.deadline_at is None
