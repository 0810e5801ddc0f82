"""Issue 17 (1): incomplete applications — query, the mail, amend, the deadline."""
from datetime import timedelta

import pytest

from support import mailfolder
from support.helpers import ORDER, cli_json, configure, place_args, run_cli
from workflow import config as config_mod
from workflow.clock import parse_iso
from workflow.effects.daemon import Daemon
from workflow.engine import Engine
from workflow.errors import InvalidTransition, ValidationError


def _subjects(workspace):
    return [str(m["Subject"]) for m in mailfolder.messages(workspace)]


def _mail(workspace, subject_part):
    found = [m for m in mailfolder.messages(workspace) if subject_part in str(m["Subject"])]
    assert found, _subjects(workspace)
    return mailfolder.body(found[-1])


def test_query_from_ordered_mails_each_field_and_amend_returns(engine, workspace):
    o = engine.place(**ORDER)
    q = engine.query(o.id, ["unit", "locality"], note="the ward of the head office", actor="ops")
    assert q.state == "needs_info" and q.deadline_at
    assert parse_iso(q.deadline_at) - parse_iso(engine.history(o.id)[-1].at) == timedelta(days=14)
    Daemon(engine).run_once()
    text = _mail(workspace, "お問い合わせ")
    assert "部門名" in text and "市区町村名" in text and "the ward of the head office" in text
    assert "Shinjuku-ku" in text  # what was given so far
    a = engine.amend(o.id, unit="Sales", locality="Minato-ku", actor="ops")
    assert a.state == "ordered" and a.unit == "Sales" and a.locality == "Minato-ku"
    last = engine.history(o.id)[-1]
    assert (last.trigger, last.source, last.dest) == ("amend", "needs_info", "ordered")
    assert last.data["changes"] == {"unit": {"old": "Web", "new": "Sales"},
                                    "locality": {"old": "Shinjuku-ku", "new": "Minato-ku"}}


def test_query_from_paid_returns_to_paid_and_makes_the_csr_with_the_new_dn(engine, workspace):
    o = engine.place(**ORDER)
    engine.fire(o.id, "pay")
    engine.query(o.id, ["organization"])
    engine.amend(o.id, organization="Example Holdings Ltd.")
    assert engine.get(o.id).state == "paid"
    Daemon(engine).run_once()
    done = engine.get(o.id)
    assert done.state == "installed", done.reason
    from cryptography import x509
    csr = x509.load_pem_x509_csr(done.csr.encode())
    org = csr.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value
    assert org == "Example Holdings Ltd."
    # the work-started mail is not sent a second time on the way back to paid
    assert sum("発行手続きを開始" in s for s in _subjects(workspace)) == 1


def test_english_mail_names_the_official_english_name(engine, workspace):
    o = engine.place(**{**ORDER, "language": "en"})
    engine.query(o.id, ["organization"])
    Daemon(engine).run_once()
    text = _mail(workspace, "We need more information")
    assert "official English name of the organization" in text


def test_intake_routes_a_non_latin_organization_to_needs_info(engine, workspace):
    o = engine.place(**{**ORDER, "organization": "株式会社サンプル"})
    assert o.state == "needs_info"
    assert o.data["query"]["fields"] == ["organization"]
    Daemon(engine).run_once()
    assert "サイトを運営する組織の正式英語名称" in _mail(workspace, "お問い合わせ")
    with pytest.raises(ValidationError) as bad:
        engine.amend(o.id, organization="株式会社サンプル")
    assert bad.value.field == "organization"
    assert engine.get(o.id).version == o.version  # nothing written
    assert engine.amend(o.id, organization="Sample K.K.").state == "ordered"


def test_accented_latin_organization_is_still_refused(engine):
    with pytest.raises(ValidationError) as bad:
        engine.place(**{**ORDER, "organization": "Société Générale"})
    assert bad.value.field == "organization"
    assert engine.list() == []


def test_deadline_reminds_then_cancels_with_the_reason(engine, workspace, clock):
    o = engine.place(**ORDER)
    engine.query(o.id, ["unit"])
    d = Daemon(engine)
    d.run_once()
    clock.advance(timedelta(days=11, hours=1))  # the 3-day reminder is due
    d.run_once()
    assert any("期限が近づいて" in s for s in _subjects(workspace)), _subjects(workspace)
    assert engine.get(o.id).state == "needs_info"
    clock.advance(timedelta(days=3))
    d.run_once()
    done = engine.get(o.id)
    assert done.state == "cancelled"
    assert done.reason == "the customer did not complete the application"
    assert "the customer did not complete the application" in _mail(workspace, "取り消し")


def test_needs_info_days_is_configurable(workspace, clock):
    configure(workspace, {"deadlines.needs_info_days": 5})
    engine = Engine(config_mod.load(workspace), clock)
    o = engine.query(engine.place(**ORDER).id, ["unit"])
    assert parse_iso(o.deadline_at) - clock.now() == timedelta(days=5)
    from workflow.history.replay import replay_rows
    rows = replay_rows(engine.store, engine.lifecycle, None, True, lambda: None)
    assert all(r["ok"] for r in rows), rows


@pytest.mark.parametrize("fields, field", [(["colour"], "field"), ([], "field")])
def test_query_with_an_unknown_field_is_refused(engine, fields, field):
    o = engine.place(**ORDER)
    with pytest.raises(ValidationError) as bad:
        engine.query(o.id, fields)
    assert bad.value.field == field
    assert engine.get(o.id).state == "ordered" and len(engine.history(o.id)) == 1


@pytest.mark.parametrize("change, field", [
    ({"country": "XX"}, "country"), ({"email": "not-an-address"}, "email"),
    ({"organization": ""}, "organization"), ({"plan": "pro"}, "plan"),
    ({"common_name": "localhost"}, "common_name")])
def test_amendment_with_an_invalid_value_is_refused(engine, change, field):
    o = engine.query(engine.place(**ORDER).id, ["unit"])
    with pytest.raises(ValidationError) as bad:
        engine.amend(o.id, **change)
    assert bad.value.field == field
    after = engine.get(o.id)
    assert after.state == "needs_info" and after.version == o.version


def test_common_name_change_refused_after_payment_allowed_before(engine):
    paid = engine.place(**ORDER)
    engine.fire(paid.id, "pay")
    engine.query(paid.id, ["common_name"])
    with pytest.raises(ValidationError) as bad:
        engine.amend(paid.id, common_name="shop.example.jp")
    assert bad.value.field == "common_name" and "new order" in bad.value.message
    fresh = engine.place(**{**ORDER, "common_name": "www.example.co.jp"})
    engine.query(fresh.id, ["common_name"])
    a = engine.amend(fresh.id, common_name="www.example.net")
    assert a.state == "ordered" and a.names == ("www.example.net", "example.net")


def test_amend_outside_needs_info_is_refused(engine):
    o = engine.place(**ORDER)
    with pytest.raises(InvalidTransition):
        engine.amend(o.id, unit="Sales")
    assert engine.get(o.id).unit == "Web"


def test_cli_query_amend_and_their_refusals(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    bad = run_cli(workspace, "order", "query", o["id"], "--field", "colour")
    assert bad.returncode == 2 and "colour" in bad.stderr
    q = cli_json(workspace, "order", "query", o["id"], "--field", "unit", "--note", "please")
    assert q["state"] == "needs_info" and q["query"]["fields"] == ["unit"]
    refused = run_cli(workspace, "order", "amend", o["id"], "--country", "ZZ")
    assert refused.returncode == 2 and "country" in refused.stderr
    assert cli_json(workspace, "order", "show", o["id"])["state"] == "needs_info"
    a = cli_json(workspace, "order", "amend", o["id"], "--unit", "Sales")
    assert a["state"] == "ordered" and a["unit"] == "Sales"
    again = run_cli(workspace, "order", "amend", o["id"], "--unit", "Ops")
    assert again.returncode == 2 and "needs_info" in again.stderr
    events = cli_json(workspace, "order", "history", o["id"])
    assert events[-1]["data"]["changes"] == {"unit": {"old": "Web", "new": "Sales"}}


def test_replay_export_import_and_status_know_needs_info(engine, workspace, tmp_path):
    o = engine.query(engine.place(**ORDER).id, ["unit"])
    status = cli_json(workspace, "status")
    assert status["states"]["needs_info"] == 1
    replay = cli_json(workspace, "replay", "--all", "--verify")
    assert all(r["ok"] for r in replay) and replay[0]["state"] == "needs_info"
    dump = tmp_path / "orders.jsonl"
    run_cli(workspace, "export", str(dump), check=True)
    from support.helpers import make_workspace
    other = make_workspace(tmp_path / "other")
    run_cli(other, "import", str(dump), check=True)
    assert cli_json(other, "order", "show", o.id)["state"] == "needs_info"
    graph = run_cli(workspace, "graph", check=True).stdout
    assert "needs_info" in graph and "superseded" in graph


def test_query_outside_ordered_or_paid_and_a_long_note_are_refused(engine):
    o = engine.place(**ORDER)
    with pytest.raises(ValidationError) as bad:
        engine.query(o.id, ["unit"], note="x" * 501)
    assert bad.value.field == "note"
    engine.fire(o.id, "cancel")
    with pytest.raises(InvalidTransition):
        engine.query(o.id, ["unit"])
    assert [e.trigger for e in engine.history(o.id)] == ["place", "cancel"]
    assert engine.get(o.id).data.get("query") is None


def test_an_order_waiting_for_information_can_be_cancelled_and_frees_the_site(engine):
    o = engine.query(engine.place(**ORDER).id, ["unit"])
    assert engine.fire(o.id, "cancel", reason="customer withdrew").state == "cancelled"
    assert engine.place(**ORDER).state == "ordered"
