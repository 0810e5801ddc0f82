"""Issue 12: dated lifetimes and automatic renewals, on the engine with a moved clock."""
from datetime import datetime, timedelta, timezone

import pytest

from support import mailfolder
from support.helpers import cli_json, configure, installed_order, place_args, run_cli
from workflow import config as config_mod
from workflow.clock import MovableClock, parse_iso
from workflow.effects.daemon import Daemon
from workflow.engine import Engine


def lifetime(order) -> timedelta:
    c = order.certificate
    return parse_iso(c.not_after) - parse_iso(c.not_before) + timedelta(seconds=1)


@pytest.mark.parametrize("day, cap", [((2026, 12, 1), 200), ((2027, 4, 1), 100), ((2029, 4, 1), 47)])
def test_lifetime_follows_the_dated_policy(workspace, day, cap):
    clock = MovableClock(datetime(*day, 9, 0, tzinfo=timezone.utc))
    engine = Engine(config_mod.load(workspace), clock)
    o = installed_order(engine)
    life = lifetime(o)
    assert timedelta(days=cap - 2) <= life <= timedelta(days=cap), life


def test_lifetime_under_faketime_through_the_cli(workspace):
    # each process starts at its own fake time: later calls get later times, so work
    # queued by one call is due for the next
    at = lambda minute: ["faketime", f"2027-04-01 09:{minute:02d}:00"]  # noqa: E731
    o = cli_json(workspace, "order", "place", *place_args(), prefix=at(0))
    run_cli(workspace, "order", "pay", o["id"], prefix=at(1), check=True)
    run_cli(workspace, "daemon", "--once", prefix=at(2), check=True)
    shown = cli_json(workspace, "order", "show", o["id"], prefix=at(3))
    assert shown["state"] == "installed", shown["reason"]
    cert = shown["certificate"]
    life = parse_iso(cert["not_after"]) - parse_iso(cert["not_before"]) + timedelta(seconds=1)
    assert timedelta(days=98) <= life <= timedelta(days=100)


def renewals_of(engine, order_id):
    return [o for o in engine.list() if o.renewal_of == order_id]


def test_exactly_one_renewal_after_two_thirds(engine, clock):
    first = installed_order(engine)
    nb, na = parse_iso(first.certificate.not_before), parse_iso(first.certificate.not_after)
    daemon = Daemon(engine)
    clock.set(nb + (na - nb) * 0.60)
    daemon.run_once()
    assert renewals_of(engine, first.id) == []
    clock.set(nb + (na - nb) * 0.668)
    daemon.run_once()
    [renewal] = renewals_of(engine, first.id)
    assert renewal.state == "installed", renewal.reason
    assert renewal.names == ("www.example.jp", "example.jp") == first.names
    assert renewal.certificate.serial != first.certificate.serial
    assert (renewal.organization, renewal.locality, renewal.contract) == \
        (first.organization, first.locality, first.contract)
    # installed over the old certificate on the same server path
    served = (engine.config.root / "var/servers/C-1001/www.example.jp/cert.pem").read_text()
    assert engine.store.conn.execute("SELECT cert_pem FROM certificates WHERE order_id = ?",
                                     (renewal.id,)).fetchone()[0] == served
    # a fresh key by default
    sealed = dict(engine.store.conn.execute("SELECT order_id, sealed FROM keys").fetchall())
    assert engine.adapters.vault.decrypt(sealed[first.id]) != engine.adapters.vault.decrypt(sealed[renewal.id])
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        daemon.run_once()
    assert len(renewals_of(engine, first.id)) == 1
    assert [e.actor for e in engine.history(renewal.id)][:2] == ["renewal", "renewal:auto_pay"]


def test_two_daemons_open_one_renewal(workspace, clock):
    e1 = Engine(config_mod.load(workspace), clock)
    e2 = Engine(config_mod.load(workspace), clock)
    first = installed_order(e1)
    nb, na = parse_iso(first.certificate.not_before), parse_iso(first.certificate.not_after)
    clock.set(nb + (na - nb) * 0.7)
    from workflow.effects.renewal import open_renewals
    opened = open_renewals(e1) + open_renewals(e2)
    assert len(opened) == 1 and len(renewals_of(e1, first.id)) == 1


def test_without_auto_pay_the_renewal_waits_for_payment(workspace, clock):
    configure(workspace, {"renewal.auto_pay": False})
    engine = Engine(config_mod.load(workspace), clock)
    first = installed_order(engine)
    nb, na = parse_iso(first.certificate.not_before), parse_iso(first.certificate.not_after)
    clock.set(nb + (na - nb) * 0.7)
    Daemon(engine).run_once()
    [renewal] = renewals_of(engine, first.id)
    assert renewal.state == "ordered"
    reminders = engine.store.conn.execute(
        "SELECT next_at FROM outbox WHERE order_id = ? AND param = 'renewal_payment_due' ORDER BY next_at",
        (renewal.id,)).fetchall()
    assert len(reminders) == 3 and all(parse_iso(r[0]) < na for r in reminders)
    clock.set(na - timedelta(days=13))
    Daemon(engine).run_once()
    subjects = [str(m["Subject"]) for m in mailfolder.to(workspace, "owner@example.jp")]
    assert any("www.example.jp" in s for s in subjects)
    assert engine.store.conn.execute(
        "SELECT count(*) FROM outbox WHERE order_id = ? AND param = 'renewal_payment_due' AND status = 'done'",
        (renewal.id,)).fetchone()[0] == 1
    engine.fire(renewal.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(renewal.id).state == "installed"


def test_inactive_contract_gets_no_renewal_and_people_are_told(workspace, clock):
    engine = Engine(config_mod.load(workspace), clock)
    first = installed_order(engine)
    text = workspace.read_text().replace('[contracts."C-1001"]\nplan = "basic"\nstatus = "active"',
                                         '[contracts."C-1001"]\nplan = "basic"\nstatus = "suspended"')
    workspace.write_text(text)
    engine = Engine(config_mod.load(workspace), clock)
    nb, na = parse_iso(first.certificate.not_before), parse_iso(first.certificate.not_after)
    clock.set(nb + (na - nb) * 0.7)
    Daemon(engine).run_once()
    Daemon(engine).run_once()
    assert renewals_of(engine, first.id) == []
    assert len(mailfolder.to(workspace, "ops@hosting.example")) == 1
    told = [m for m in mailfolder.to(workspace, "owner@example.jp") if "C-1001" in mailfolder.body(m)
            or "renew" in mailfolder.body(m).lower() or "更新" in mailfolder.body(m)]
    assert told


def test_manual_renewal_of_through_the_cli(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    r = cli_json(workspace, "order", "place", *place_args(renewal_of=o["id"]))
    assert r["renewal_of"] == o["id"]
    # listed by id (a stable cursor), not by placing time
    assert {x["id"]: x["renewal_of"] for x in cli_json(workspace, "order", "list")} == \
        {o["id"]: None, r["id"]: o["id"]}
    twice = run_cli(workspace, "order", "place", *place_args(renewal_of=o["id"]))
    assert twice.returncode == 2 and "renewal" in twice.stderr
    unknown = run_cli(workspace, "order", "place", *place_args(renewal_of="20990101-00000000"))
    assert unknown.returncode == 2
