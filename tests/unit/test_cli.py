"""The CLI contract, through real subprocesses on a workspace made by `certflow init`."""
import sqlite3

import pytest

from support.helpers import cli_json, place_args, run_cli


def counts(workspace):
    db = sqlite3.connect(workspace.parent / "var/data/certflow.db")
    try:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("orders", "events", "outbox"))
    finally:
        db.close()


def test_place_json_returns_ordered_with_sans(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    assert o["state"] == "ordered" and o["sans"] == ["example.jp"]
    assert set(o) >= {"id", "state", "common_name", "sans", "plan", "validation", "deadline_at",
                      "version", "csr", "certificate", "reason", "renewal_of"}
    assert o["renewal_of"] is None and o["certificate"] is None
    idn = cli_json(workspace, "order", "place", *place_args(common_name="www.例え.jp"))
    assert idn["common_name"] == "www.xn--r8jz45g.jp" and idn["sans"] == ["xn--r8jz45g.jp"]
    deep = cli_json(workspace, "order", "place", *place_args(common_name="www.shop.example.co.jp"))
    assert deep["sans"] == []


@pytest.mark.parametrize("override, field", [
    ({"common_name": "-bad-.example.jp"}, "common_name"),
    ({"common_name": "192.0.2.10"}, "common_name"),
    ({"common_name": "intranet"}, "common_name"),
    ({"common_name": "a" * 64 + ".example.jp"}, "common_name"),
    ({"country": "JPN"}, "country"),
    ({"plan": "platinum"}, "plan"),
    ({"contract": "C-0000"}, "contract"),
    ({"email": "owner-at-example.jp"}, "email"),
])
def test_malformed_input_exits_2_naming_the_field_and_stores_nothing(workspace, override, field):
    before = counts(workspace)
    proc = run_cli(workspace, "order", "place", *place_args(**override))
    assert proc.returncode == 2
    assert field.replace("_", " ") in proc.stderr.replace("_", " ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert counts(workspace) == before


@pytest.mark.parametrize("contract, plan, reason", [
    ("C-9001", "basic", "not active"), ("C-2001", "flex", "fixed IP")])
def test_unapplicable_orders_are_recorded_rejected(workspace, contract, plan, reason):
    o = cli_json(workspace, "order", "place", *place_args(contract=contract, plan=plan))
    assert o["state"] == "rejected" and reason in o["reason"]
    shown = cli_json(workspace, "order", "show", o["id"])
    assert shown["state"] == "rejected"


def test_paying_twice_exits_2_and_writes_no_history(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    assert run_cli(workspace, "order", "pay", o["id"]).returncode == 0
    second = run_cli(workspace, "order", "pay", o["id"])
    assert second.returncode == 2 and "cannot pay in state paid" in second.stderr
    history = cli_json(workspace, "order", "history", o["id"])
    assert [h["seq"] for h in history] == [1, 2]
    assert [h["trigger"] for h in history] == ["place", "pay"]
    assert set(history[0]) >= {"seq", "at", "trigger", "source", "dest", "actor"}


def test_history_seq_is_gapless_through_the_whole_path(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    run_cli(workspace, "order", "pay", o["id"], check=True)
    run_cli(workspace, "daemon", "--once", check=True)
    history = cli_json(workspace, "order", "history", o["id"])
    assert [h["seq"] for h in history] == list(range(1, len(history) + 1))
    assert history[-1]["dest"] == "installed"
    listed = cli_json(workspace, "order", "list", "--state", "installed")
    assert [r["id"] for r in listed] == [o["id"]]


def test_unknown_order_exits_2(workspace):
    proc = run_cli(workspace, "order", "show", "20990101-deadbeef")
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_graph_names_every_state(workspace):
    from states import LIFECYCLE
    for fmt in ("mermaid", "dot"):
        out = run_cli(workspace, "graph", "--format", fmt, check=True).stdout
        for state in LIFECYCLE.state_names:
            assert state in out, (fmt, state)


@pytest.mark.parametrize("text, needle", [
    ("[ca\nkind = 'local'\n", "line"),
    ("[ca]\nkindd = 'local'\n", "ca.kindd"),
    ("[ca]\nkind = 'carrier'\n", "ca.kind"),
    ("[nosuch]\nx = 1\n", "nosuch"),
    ("[effects]\nmax_attempts = 'many'\n", "effects.max_attempts"),
    ('[contracts."X"]\nplan = "gold"\n', "contracts.X.plan"),
])
def test_broken_config_exits_2_naming_the_key(tmp_path, text, needle):
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    proc = run_cli(cfg, "order", "list")
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and str(cfg) in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_approver_rules_at_intake(workspace):
    ok = cli_json(workspace, "order", "place", *place_args(validation="email", approver="webmaster@example.jp"))
    assert ok["approver"] == "webmaster@example.jp"
    default = cli_json(workspace, "order", "place", *place_args(validation="email",
                                                                common_name="shop.example.jp"))
    assert default["approver"] == "admin@example.jp"
    for bad in ("someone@gmail.com", "admin@example.com", "info@example.jp"):
        proc = run_cli(workspace, "order", "place", *place_args(validation="email", approver=bad))
        assert proc.returncode == 2 and "approver" in proc.stderr, bad


def test_email_whois_refused_today_citing_sc080(workspace):
    proc = run_cli(workspace, "order", "place", *place_args(validation="email-whois"))
    assert proc.returncode == 2
    assert "SC-080" in proc.stderr and "2025-07-15" in proc.stderr
