"""Issue 17 (2): hosting contracts as data in the store, with their audit trail."""
import json

import pytest

from support.helpers import ORDER, cli_json, place_args, run_cli
from workflow import config as config_mod
from workflow.effects.daemon import Daemon
from workflow.engine import Engine
from workflow.errors import InvalidTransition, ValidationError


def test_put_get_list_and_history(engine):
    c = engine.contracts.put("C-7001", plan="pro", servers=["var/servers/a", "var/servers/b"],
                             reload="true", verify="127.0.0.1:8443", actor="backend")
    assert c["source"] == "store" and c["status"] == "active"
    assert [t["path"].rsplit("/", 1)[-1] for t in c["targets"]] == ["a", "b"]
    assert all(t["reload"] == "true" and t["verify"] == "127.0.0.1:8443" for t in c["targets"])
    engine.contracts.put("C-7001", status="suspended", actor="billing")
    assert engine.contracts.get("C-7001")["servers"] == ["var/servers/a", "var/servers/b"]
    changes = engine.contracts.history("C-7001")
    assert [ch["actor"] for ch in changes] == ["backend", "billing"]
    assert changes[0]["before"] is None
    assert changes[1]["before"]["status"] == "active" and changes[1]["after"]["status"] == "suspended"
    assert [c["id"] for c in engine.contracts.list("suspended")] == ["C-7001"]
    assert "C-7001" not in [c["id"] for c in engine.contracts.list("active")]


def test_config_tables_are_seed_data_the_store_overrides(engine):
    seed = engine.contracts.get("C-1001")
    assert seed["source"] == "config" and engine.contracts.history("C-1001") == []
    engine.contracts.put("C-1001", status="expired", actor="ops")
    changed = engine.contracts.get("C-1001")
    assert changed["source"] == "store" and changed["status"] == "expired"
    first = engine.contracts.history("C-1001")[0]
    assert first["before"]["status"] == "active" and first["after"]["status"] == "expired"
    assert [c["id"] for c in engine.contracts.list("expired")] == ["C-1001", "C-9001"]
    assert "C-1001" not in [c["id"] for c in engine.contracts.list("active")]


def test_an_unchanged_put_records_nothing(engine):
    engine.contracts.put("C-7002", plan="basic")
    engine.contracts.put("C-7002", plan="basic")
    assert len(engine.contracts.history("C-7002")) == 1


@pytest.mark.parametrize("fields, field", [
    ({"plan": "gold"}, "plan"), ({}, "plan"), ({"plan": "basic", "status": "paused"}, "status"),
    ({"plan": "basic", "verify": "no-port"}, "verify"), ({"plan": "basic", "colour": "red"}, "colour"),
    ({"plan": "basic", "servers": [{"where": "/x"}]}, "servers"),
    ({"plan": "basic", "fixed_ip": "yes"}, "fixed_ip")])
def test_bad_contract_fields_are_refused_and_nothing_written(engine, fields, field):
    with pytest.raises(ValidationError) as bad:
        engine.contracts.put("C-7003", **fields)
    assert bad.value.field == field
    assert engine.contracts.get("C-7003") is None
    assert engine.store.contracts() == []


def test_a_bad_contract_id_is_refused(engine):
    with pytest.raises(ValidationError) as bad:
        engine.contracts.put("../etc", plan="basic")
    assert bad.value.field == "id"


def test_place_uses_the_book_at_once_and_a_suspension_holds_orders_in_flight(engine):
    with pytest.raises(ValidationError):
        engine.place(**{**ORDER, "contract": "C-7100"})
    engine.contracts.put("C-7100", plan="basic", actor="backend")
    ordered = engine.place(**{**ORDER, "contract": "C-7100"})
    paid = engine.place(**{**ORDER, "contract": "C-7100", "common_name": "shop.example.jp"})
    engine.fire(paid.id, "pay")
    asked = engine.query(engine.place(**{**ORDER, "contract": "C-7100",
                                          "common_name": "mail.example.jp"}).id, ["unit"])
    engine.contracts.put("C-7100", status="suspended", actor="billing")
    for o in (ordered, paid, asked):
        held = engine.get(o.id)
        assert held.state == "on_hold" and held.reason == "hosting contract C-7100 is suspended"
    with pytest.raises(InvalidTransition) as refused:
        engine.fire(paid.id, "resume")
    assert "C-7100" in str(refused.value)
    engine.contracts.put("C-7100", status="active", actor="billing")
    assert engine.fire(paid.id, "resume").state == "paid"
    assert engine.fire(ordered.id, "resume").state == "ordered"
    back = engine.fire(asked.id, "resume")
    assert back.state == "needs_info" and back.deadline_at == asked.deadline_at
    Daemon(engine).run_once()
    assert engine.get(paid.id).state == "installed"


def test_a_submitted_order_is_not_held_by_a_suspension(engine):
    engine.contracts.put("C-7200", plan="basic")
    o = engine.place(**{**ORDER, "contract": "C-7200", "validation": "email"})
    engine.fire(o.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(o.id).state == "awaiting_approval"
    engine.contracts.put("C-7200", status="expired")
    assert engine.get(o.id).state == "awaiting_approval"


def test_a_second_engine_sees_a_change_without_restart(workspace, clock):
    one = Engine(config_mod.load(workspace), clock)
    two = Engine(config_mod.load(workspace), clock)
    one.contracts.put("C-7300", plan="basic")
    assert two.place(**{**ORDER, "contract": "C-7300"}).state == "ordered"
    one.contracts.put("C-7300", status="expired")
    o = two.place(**{**ORDER, "contract": "C-7300", "common_name": "b.example.jp"})
    assert o.state == "rejected" and "C-7300" in o.reason


def test_cli_put_show_list_history_and_refusals(workspace):
    c = cli_json(workspace, "contract", "put", "C-8001", "--plan", "flex", "--fixed-ip",
                 "--server", "var/servers/x", "--reload", "true")
    assert c["fixed_ip"] is True and c["targets"][0]["reload"] == "true"
    bad = run_cli(workspace, "contract", "put", "C-8002", "--plan", "gold")
    assert bad.returncode == 2 and "plan" in bad.stderr
    assert run_cli(workspace, "contract", "show", "C-8002").returncode == 2
    run_cli(workspace, "contract", "put", "C-8001", "--status", "suspended", check=True)
    shown = cli_json(workspace, "contract", "show", "C-8001")
    assert shown["status"] == "suspended" and shown["plan"] == "flex"
    listed = cli_json(workspace, "contract", "list", "--status", "suspended")
    assert [r["id"] for r in listed] == ["C-8001"]
    history = cli_json(workspace, "contract", "history", "C-8001")
    assert [h["after"]["status"] for h in history] == ["active", "suspended"]
    assert all(h["actor"] == "cli" for h in history)
    table = run_cli(workspace, "contract", "history", "C-8001", check=True).stdout
    assert "active → suspended" in table


def test_cli_import_csv_and_jsonl(workspace, tmp_path):
    csv_file = tmp_path / "contracts.csv"
    csv_file.write_text("id,plan,status,fixed_ip,servers\n"
                        "C-9101,basic,active,,\n"
                        "C-9102,flex,active,true,var/servers/p;var/servers/q\n")
    out = run_cli(workspace, "contract", "import", str(csv_file), check=True).stdout
    assert "2 contracts read, 2 changed" in out
    c = cli_json(workspace, "contract", "show", "C-9102")
    assert c["fixed_ip"] is True and len(c["targets"]) == 2
    jsonl = tmp_path / "contracts.jsonl"
    jsonl.write_text(json.dumps({"id": "C-9101", "status": "suspended"}) + "\n"
                     + json.dumps({"id": "C-9103", "plan": "ex-cloud", "plesk": False}) + "\n")
    run_cli(workspace, "contract", "import", str(jsonl), check=True)
    assert cli_json(workspace, "contract", "show", "C-9101")["status"] == "suspended"
    assert cli_json(workspace, "contract", "show", "C-9103")["plesk"] is False
    assert cli_json(workspace, "contract", "history", "C-9101")[-1]["actor"] == "cli:import"


@pytest.mark.parametrize("text, where, field", [
    ("id,plan\nC-9201,basic\nC-9202,gold\n", ":3", "plan"),
    ("id,plan,colour\nC-9201,basic,red\n", ":1", "colour"),
    ("id,plan\nC-9201,basic\nC-9201,pro\n", ":3", "C-9201"),
    ("id,plan,fixed_ip\nC-9201,flex,maybe\n", ":2", "fixed_ip"),
    ("id,plan\nC-9201,basic,extra\n", ":2", "cells"),
    ('{"id": "C-9201", "plan": "basic"}\nnot json\n', ":2", "JSON"),
    ('{"id": "C-9201", "plan": "basic"}\n{"plan": "basic"}\n', ":2", "id")])
def test_cli_import_with_a_bad_row_writes_nothing(workspace, tmp_path, text, where, field):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    proc = run_cli(workspace, "contract", "import", str(path))
    assert proc.returncode == 2, proc.stderr
    assert f"{path}{where}" in proc.stderr and field in proc.stderr
    assert run_cli(workspace, "contract", "show", "C-9201").returncode == 2


def test_cli_suspension_holds_and_resume_continues(workspace):
    run_cli(workspace, "contract", "put", "C-9301", "--plan", "basic", check=True)
    o = cli_json(workspace, "order", "place", *place_args(contract="C-9301"))
    run_cli(workspace, "contract", "put", "C-9301", "--status", "expired", check=True)
    held = cli_json(workspace, "order", "show", o["id"])
    assert held["state"] == "on_hold" and "C-9301" in held["reason"]
    refused = run_cli(workspace, "order", "resume", o["id"])
    assert refused.returncode == 2 and "C-9301" in refused.stderr
    run_cli(workspace, "contract", "put", "C-9301", "--status", "active", check=True)
    assert cli_json(workspace, "order", "resume", o["id"])["state"] == "ordered"


def test_library_import_is_all_or_nothing_naming_the_line(engine, tmp_path):
    from workflow.contract_file import read_items
    path = tmp_path / "contracts.jsonl"
    path.write_text('{"id": "C-9401", "plan": "basic"}\n{"id": "C-9402", "plan": "gold"}\n')
    with pytest.raises(ValidationError) as bad:
        engine.contracts.put_many(read_items(str(path)), actor="backend")
    assert bad.value.field == "plan" and f"{path}:2" in bad.value.message
    assert engine.contracts.get("C-9401") is None and engine.store.contracts() == []


def test_a_contract_change_reaches_the_installer_without_restart(engine, tmp_path):
    target = tmp_path / "web9"
    engine.contracts.put("C-9501", plan="basic", servers=[str(target)])
    o = engine.place(**{**ORDER, "contract": "C-9501"})
    engine.fire(o.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(o.id).state == "installed"
    assert (target / ORDER["common_name"] / "cert.pem").is_file()
