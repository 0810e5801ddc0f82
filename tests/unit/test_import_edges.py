"""Import trusts nothing in the file: malformed values are refused naming the line and
the key (issue 16 #16), imported orders pass intake and are history nothing acts on
(#17), and an endless input file is refused at a cap (#24)."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from support.helpers import ORDER, make_workspace
from support.inproc import invoke, snapshot
from workflow import config as config_mod
from workflow.effects.daemon import Daemon
from workflow.engine import Engine


def _export(config: Path, path: Path) -> list[dict]:
    res = invoke(config, "export", str(path))
    assert res.exit_code == 0, res.describe()
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, objs: list[dict], raw_line: str | None = None, at: int = 2) -> Path:
    lines = [json.dumps(o, ensure_ascii=False) for o in objs]
    if raw_line is not None:
        lines[at - 1] = raw_line
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def one_order(engine, workspace, tmp_path) -> list[dict]:
    """An export holding one order just placed (header + one line)."""
    engine.place(**ORDER)
    return _export(workspace, tmp_path / "one.jsonl")


@pytest.fixture
def target(tmp_path) -> Path:
    return make_workspace(tmp_path / "target")


def _refused(target: Path, path: Path, *needles: str) -> str:
    before = snapshot(target)
    res = invoke(target, "import", str(path))
    assert res.exit_code == 2, res.describe()
    assert res.stderr.count("\n") == 1, res.stderr
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)
    assert snapshot(target) == before
    return res.stderr


# --- #16: malformed values exit 2 naming the line and the key -----------------------

def test_deeply_nested_json_is_refused_naming_the_line(one_order, target, tmp_path):
    header, order = one_order
    nested = json.dumps(order)[:-1] + ', "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = _write(tmp_path / "deep.jsonl", one_order, raw_line=nested)
    _refused(target, path, f"{path}:2:", "nested deeper")

    order_deep = {**order, "data": {"a": json.loads("[" * 50 + "]" * 50)}}
    path = _write(tmp_path / "deep2.jsonl", [header, order_deep])
    _refused(target, path, f"{path}:2:", "nested deeper")


@pytest.mark.parametrize("key, value", [
    ("unit", {"a": 1}), ("organization", ["Example"]), ("created_at", {"x": 1}),
    ("reason", [1, 2]), ("held_from", {"s": "paid"}), ("csr", 5), ("entered_seq", "1"),
])
def test_a_dict_or_list_where_a_column_value_belongs_is_refused(one_order, target, tmp_path,
                                                                 key, value):
    header, order = one_order
    path = _write(tmp_path / "typed.jsonl", [header, {**order, key: value}])
    _refused(target, path, f"{path}:2:", key)


@pytest.mark.parametrize("where", ["version", "entered_seq", "data", "event"])
def test_a_2_to_the_70_integer_is_refused(one_order, target, tmp_path, where):
    header, order = one_order
    big = 2 ** 70
    if where == "data":
        order = {**order, "data": {"n": big}}
    elif where == "event":
        order = {**order, "events": [{**order["events"][0], "seq": big}]}
    else:
        order = {**order, where: big}
    path = _write(tmp_path / "big.jsonl", [header, order])
    _refused(target, path, f"{path}:2:", "outside 64 bits")


@pytest.mark.parametrize("raw", [
    '{"id": 1e99999}', '{"id": NaN}', '{"id": "\\ud800"}', '{"id": ' + "9" * 5000 + "}",
])
def test_numbers_json_allows_but_sqlite_cannot_hold_are_refused(one_order, target, tmp_path, raw):
    path = _write(tmp_path / "num.jsonl", one_order, raw_line=raw)
    _refused(target, path, f"{path}:2:")


@pytest.mark.parametrize("key, value", [
    ("created_at", "yesterday"), ("updated_at", "2026-13-01T00:00:00Z"),
    ("deadline_at", "9999-12-31T23:59:59-23:59"), ("created_at", "0001-01-01T00:00:00Z"),
])
def test_timestamps_must_be_canonical_utc(one_order, target, tmp_path, key, value):
    header, order = one_order
    path = _write(tmp_path / "ts.jsonl", [header, {**order, key: value}])
    _refused(target, path, f"{path}:2:", key)


def test_an_event_at_the_end_of_time_is_refused(engine, workspace, target, tmp_path):
    """Its deadline (10 days later) would be past what a date can hold: OverflowError."""
    order = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    header, line = _export(workspace, tmp_path / "waiting.jsonl")
    for event in line["events"]:
        event["at"] = "9999-12-31T23:59:59Z"
    path = _write(tmp_path / "end.jsonl", [header, line])
    _refused(target, path, f"{path}:2:", "event #1 at")


def test_an_event_field_of_the_wrong_type_is_refused(one_order, target, tmp_path):
    header, order = one_order
    event = {**order["events"][0], "actor": {"who": "me"}}
    path = _write(tmp_path / "actor.jsonl", [header, {**order, "events": [event]}])
    _refused(target, path, f"{path}:2:", "actor")


# --- #17: imported orders pass intake, and nothing acts on them ---------------------

@pytest.mark.parametrize("key, value, needle", [
    ("common_name", "../../../tmp/x", "common_name"),
    ("contract", "C-NOPE", "contract"),
    ("country", "XX", "country"),
    ("email", "not-an-address", "email"),
    ("id", "20261201-abcd\r\nBcc: x@example.jp", "id"),
    ("id", "../../etc", "id"),
    ("renewal_of", "x\ny", "renewal_of"),
    ("common_name", "WWW.EXAMPLE.JP", "common_name"),  # intake stores it lower-case
    ("sans", ["evil.example.com"], "sans"),
])
def test_imported_orders_pass_intake_checks(one_order, target, tmp_path, key, value, needle):
    header, order = one_order
    path = _write(tmp_path / "intake.jsonl", [header, {**order, key: value}])
    _refused(target, path, f"{path}:2:", needle)


def test_an_imported_order_never_cancels_a_live_orders_application(tmp_path, clock):
    """The defect: an imported awaiting_approval order carried the application id of a
    live order here; its (earlier) imported deadline fired and cancel_ca cancelled the
    live order's CA application."""
    config = make_workspace(tmp_path / "ws")
    engine = Engine(config_mod.load(config), clock)
    daemon = Daemon(engine)
    live = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(live.id, "pay")
    daemon.run_once()
    live = engine.get(live.id)
    assert live.state == "awaiting_approval" and live.data["application_id"]
    app_id = live.data["application_id"]

    # a forged export: the live order's own line, under another id, 5 days older
    lines = _export(config, tmp_path / "live.jsonl")
    forged = json.loads(json.dumps(lines[1]).replace(live.id, "20261126-00000000"))
    shift = lambda t: (engine.clock.now().fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
                       - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for e in forged["events"]:
        e["at"] = shift(e["at"])
    for key in ("created_at", "updated_at", "deadline_at"):
        forged[key] = shift(forged[key])
    forged["data"]["application_id"] = app_id
    path = _write(tmp_path / "forged.jsonl", [{**lines[0], "orders": 1}, forged])
    res = invoke(config, "import", str(path))
    assert res.exit_code == 0, res.describe()

    clock.advance(timedelta(days=6))  # past the forged deadline, not the live one
    daemon.run_once()
    imported = engine.get("20261126-00000000")
    assert imported.state == "awaiting_approval"   # history: its deadline is not live here
    assert imported.deadline_at is None and imported.to_dict()["imported"]
    assert imported.data["imported"]["deadline_at"] == forged["deadline_at"]
    apps = {a["application_id"]: a for a in engine.adapters.ca.applications()}
    assert apps[app_id]["status"] == "pending"
    assert engine.get(live.id).state == "awaiting_approval"

    # an operator's command does not act on it either, and writes nothing
    before = snapshot(config)
    res = invoke(config, "order", "cancel", "20261126-00000000")
    assert res.exit_code == 2 and "imported" in res.stderr, res.describe()
    assert snapshot(config) == before
    assert apps[app_id]["status"] == "pending"

    # replay still verifies the imported history against its exported deadline
    res = invoke(config, "replay", "--all", "--verify", "--json")
    assert res.exit_code == 0 and all(r["ok"] for r in json.loads(res.stdout)), res.stdout
    engine.close()


def test_cancel_ca_cancels_only_the_application_recorded_for_this_order(engine, workspace):
    """Defence in depth: even a cancel_ca with another order's application id (however
    it got there) leaves that application alone."""
    from workflow.effects.dispatcher import Dispatcher
    from workflow.effects.handlers import cancel_ca
    live = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(live.id, "pay")
    Daemon(engine).run_once()
    app_id = engine.get(live.id).data["application_id"]
    other = engine.place(**{**ORDER, "common_name": "www.other.example.jp"})
    stranger = engine.get(other.id)
    stranger = type(stranger)(**{**stranger.__dict__, "data": {"application_id": app_id}})
    dispatcher = Dispatcher(engine)
    cancel_ca(dispatcher.context({"idem_key": f"{other.id}:2:cancel_ca"}, stranger))
    apps = {a["application_id"]: a for a in engine.adapters.ca.applications()}
    assert apps[app_id]["status"] == "pending"
    cancel_ca(dispatcher.context({"idem_key": f"{live.id}:9:cancel_ca"}, engine.get(live.id)))
    apps = {a["application_id"]: a for a in engine.adapters.ca.applications()}
    assert apps[app_id]["status"] == "cancelled"


def test_an_imported_order_still_ordered_cannot_be_paid_here(one_order, target, tmp_path):
    header, order = one_order
    path = _write(tmp_path / "ordered.jsonl", one_order)
    assert invoke(target, "import", str(path)).exit_code == 0
    before = snapshot(target)
    res = invoke(target, "order", "pay", order["id"])
    assert res.exit_code == 2 and "imported as history" in res.stderr, res.describe()
    assert snapshot(target) == before


def test_importing_an_export_of_imported_orders_keeps_them_history(one_order, target, tmp_path):
    path = _write(tmp_path / "a.jsonl", one_order)
    assert invoke(target, "import", str(path)).exit_code == 0
    again = _export(target, tmp_path / "again.jsonl")
    third = make_workspace(tmp_path / "third")
    res = invoke(third, "import", str(tmp_path / "again.jsonl"))
    assert res.exit_code == 0, res.describe()
    show = json.loads(invoke(third, "order", "show", again[1]["id"], "--json").stdout)
    assert show["imported"] and show["state"] == "ordered"


# --- #24: an endless import file is refused at the cap ------------------------------

def test_an_endless_import_file_is_refused_at_the_line_cap(target):
    res = invoke(target, "import", "/dev/zero")
    assert res.exit_code == 2, res.describe()
    assert "/dev/zero:1: line longer than 8 MiB" in res.stderr


def test_an_imported_installed_order_is_not_renewed_here(tmp_path, clock):
    """An archive imported into a live workspace must not turn into applications and
    installations: the renewal sweep leaves imported orders alone."""
    source = make_workspace(tmp_path / "source")
    engine = Engine(config_mod.load(source), clock)
    order = engine.place(**ORDER)
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "installed"
    lines = _export(source, tmp_path / "installed.jsonl")
    engine.close()

    target = make_workspace(tmp_path / "target")
    assert invoke(target, "import", str(tmp_path / "installed.jsonl")).exit_code == 0
    here = Engine(config_mod.load(target), clock)
    clock.advance(timedelta(days=300))  # far past two thirds of any lifetime
    Daemon(here).run_once()
    assert [o.id for o in here.list()] == [lines[1]["id"]]  # no renewal order opened
    assert here.get(order.id).state == "installed"
    here.close()
