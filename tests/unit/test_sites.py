"""Issue 17 (3): one live certificate per site — the duplicate refusal, `superseded`."""
import pytest

from support import mailfolder
from support.helpers import ORDER, cli_json, installed_order, place_args, run_cli
from workflow.clock import parse_iso
from workflow.effects.daemon import Daemon
from workflow.effects.renewal import candidates
from workflow.errors import ValidationError


def _renew(engine, clock, first):
    nb, na = parse_iso(first.certificate.not_before), parse_iso(first.certificate.not_after)
    clock.set(nb + (na - nb) * 0.7)
    Daemon(engine).run_once()
    [renewal] = [o for o in engine.list() if o.renewal_of == first.id]
    return renewal


def test_a_second_order_for_a_site_in_flight_is_refused_naming_it(engine):
    first = engine.place(**ORDER)
    engine.fire(first.id, "pay")
    with pytest.raises(ValidationError) as bad:
        engine.place(**ORDER)
    assert bad.value.field == "common_name" and first.id in bad.value.message
    assert len(engine.list()) == 1
    # another contract, or another name, is another site
    assert engine.place(**{**ORDER, "contract": "C-1002", "plan": "pro"}).state == "ordered"
    assert engine.place(**{**ORDER, "common_name": "shop.example.jp"}).state == "ordered"
    engine.fire(first.id, "cancel")
    assert engine.place(**ORDER).state == "ordered"  # nothing in flight any more


def test_a_rejected_order_does_not_block_the_site(engine):
    o = engine.place(**{**ORDER, "contract": "C-9001"})
    assert o.state == "rejected"
    engine.contracts.put("C-9001", status="active")
    assert engine.place(**{**ORDER, "contract": "C-9001"}).state == "ordered"


def test_the_cli_refusal_exits_2_naming_the_order(workspace):
    first = cli_json(workspace, "order", "place", *place_args())
    proc = run_cli(workspace, "order", "place", *place_args())
    assert proc.returncode == 2 and first["id"] in proc.stderr
    assert len(cli_json(workspace, "order", "list")) == 1


def test_a_renewal_supersedes_its_predecessor_once_installed(engine, clock):
    first = installed_order(engine)
    renewal = _renew(engine, clock, first)
    assert renewal.state == "installed", renewal.reason
    old = engine.get(first.id)
    assert old.state == "superseded" and old.to_dict()["superseded_by"] == renewal.id
    assert old.certificate.serial == first.certificate.serial  # its certificate is kept
    last = engine.history(first.id)[-1]
    assert (last.trigger, last.source, last.dest, last.actor) == \
        ("supersede", "installed", "superseded", "renewal")
    assert [o.state for o in engine.list() if o.common_name == ORDER["common_name"]] == \
        ["superseded", "installed"]
    assert first.id not in [r["id"] for r in candidates(engine)]
    # the renewal is renewed in turn, and supersedes nothing but its own predecessor
    second = _renew(engine, clock, engine.get(renewal.id))
    assert second.state == "installed"
    assert engine.get(renewal.id).state == "superseded"
    assert len([o for o in engine.list() if o.renewal_of == first.id]) == 1


def test_an_application_only_renewal_supersedes_once_delivered(engine, workspace, clock):
    from support.acme_parts import make_csr
    cn = "www.example.jp"
    _, csr = make_csr((cn, "example.jp"))

    def deliver(order_id):
        Daemon(engine).run_once()
        engine.submit_csr(order_id, csr)
        seen = {m["Message-ID"] for m in mailfolder.to(workspace, "admin@example.jp")}
        Daemon(engine).run_once()
        [approval] = [m for m in mailfolder.to(workspace, "admin@example.jp")
                      if m["Message-ID"] not in seen]
        engine.poll_now(engine.adapters.ca.approve(mailfolder.token_in(approval)))
        Daemon(engine).run_once()
        o = engine.get(order_id)
        assert o.state == "delivered", o.reason
        return o

    placed = engine.place(**{**ORDER, "contract": "C-3001", "plan": "ex-cloud",
                             "validation": "email"})
    engine.fire(placed.id, "pay")
    first = deliver(placed.id)
    nb, na = parse_iso(first.certificate.not_before), parse_iso(first.certificate.not_after)
    clock.set(nb + (na - nb) * 0.7)
    Daemon(engine).run_once()
    [renewal] = [o for o in engine.list() if o.renewal_of == first.id]
    deliver(renewal.id)
    old = engine.get(first.id)
    assert old.state == "superseded" and old.to_dict()["superseded_by"] == renewal.id


def test_show_json_and_replay_know_superseded(engine, workspace, clock):
    first = installed_order(engine)
    renewal = _renew(engine, clock, first)
    shown = cli_json(workspace, "order", "show", first.id)
    assert shown["state"] == "superseded" and shown["superseded_by"] == renewal.id
    assert cli_json(workspace, "order", "show", renewal.id)["superseded_by"] is None
    text = run_cli(workspace, "order", "show", first.id, check=True).stdout
    assert "superseded_by" in text and renewal.id in text
    replay = cli_json(workspace, "replay", "--all", "--verify")
    assert all(r["ok"] for r in replay), replay
