"""The library edge (issue 16 items 11-14) and the one step function (issue 15)."""
import dataclasses
import re
import threading
from datetime import timedelta

import pytest

from states import LIFECYCLE
from support.helpers import ORDER
from workflow import config as config_mod
from workflow.engine import Engine
from workflow.errors import InvalidTransition, ValidationError
from workflow.history.replay import replay_rows


def internal(engine, order_id, trigger, **data):
    """Fire an internal trigger the way effects do."""
    with engine.command() as tx:
        engine.apply(tx, engine.load(tx, order_id), trigger, data, "effect:test", engine.now())


def to_approval(engine):
    o = engine.place(**ORDER)
    engine.fire(o.id, "pay")
    internal(engine, o.id, "submit", csr="-----BEGIN CERTIFICATE REQUEST-----")
    internal(engine, o.id, "ca_accept", application_id="app-1")
    return engine.get(o.id)


@pytest.mark.parametrize("trigger, data", [
    ("ca_accept", {}), ("submit", {"csr": "not a csr"}), ("issue", {}), ("hold", {}),
    ("install", {}), ("expire", {}), ("request_csr", {})])
def test_internal_triggers_refused_from_outside_and_write_nothing(engine, trigger, data):
    o = engine.place(**ORDER)
    engine.fire(o.id, "pay")
    before = engine.history(o.id)
    with pytest.raises(InvalidTransition) as err:
        engine.fire(o.id, trigger, **data)
    assert err.value.trigger == trigger and "not from outside" in err.value.reason
    assert engine.get(o.id).state == "paid" and engine.history(o.id) == before


def test_customer_csr_is_checked_by_the_engine(engine):
    assert "C-3001" in engine.config.contracts  # EX-CLOUD without Plesk in the defaults
    o = engine.place(**{**ORDER, "plan": "ex-cloud", "contract": "C-3001"})
    engine.fire(o.id, "pay")
    internal(engine, o.id, "request_csr")
    with pytest.raises(ValidationError) as err:
        engine.submit_csr(o.id, b"not a csr")
    assert err.value.field == "csr"
    assert engine.get(o.id).state == "awaiting_csr" and engine.get(o.id).csr is None


def test_submit_csr_refused_outside_awaiting_csr(engine):
    o = engine.place(**ORDER)
    with pytest.raises(ValidationError) as err:
        engine.submit_csr(o.id, b"whatever")
    assert err.value.field == "state" and engine.get(o.id).state == "ordered"


def test_record_certificate_refuses_garbage_and_writes_nothing(engine):
    o = to_approval(engine)
    with pytest.raises(ValidationError) as err:
        engine.record_certificate(o.id, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert err.value.field == "certificate"
    after = engine.get(o.id)
    assert after.state == "awaiting_approval" and after.certificate is None
    assert after.version == o.version


def test_misspelled_data_key_is_refused_naming_it(engine):
    o = engine.place(**ORDER)
    with pytest.raises(ValidationError) as err:
        engine.fire(o.id, "cancel", reasn="x")
    assert err.value.field == "reasn" and "reasn" in str(err.value)
    assert engine.get(o.id).state == "ordered" and len(engine.history(o.id)) == 1
    with pytest.raises(ValidationError):
        engine.fire(o.id, "pay", amount=3)


def test_order_ids_carry_64_random_bits_and_a_collision_is_drawn_again(engine, monkeypatch):
    first = engine.place(**ORDER)
    assert re.fullmatch(r"\d{8}-[0-9a-f]{16}", first.id)
    suffix = first.id.split("-", 1)[1]
    draws = iter([suffix, suffix, "0123456789abcdef"])
    monkeypatch.setattr("workflow.engine.secrets.token_hex", lambda n: next(draws))
    second = engine.place(**{**ORDER, "common_name": "shop.example.jp"})
    assert second.id.endswith("-0123456789abcdef") and engine.get(first.id).state == "ordered"


def test_one_engine_shared_by_two_threads(engine):
    errors, ids = [], []

    def work():
        try:
            for i in range(40):  # one order in flight per site: each its own host
                o = engine.place(**{**ORDER, "common_name": f"t{threading.get_ident()}-{i}.example.jp"})
                engine.fire(o.id, "pay")
                ids.append(o.id)
        except Exception as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 80
    assert {o.state for o in engine.list()} == {"paid"} and len(engine.list()) == 80


def _with_approval_days(days):
    states_ = tuple(dataclasses.replace(s, deadline=s.deadline._replace(after=timedelta(days=days)))
                    if s.name == "awaiting_approval" else s for s in LIFECYCLE.states)
    return dataclasses.replace(LIFECYCLE, states=states_)


def test_a_what_if_lifecycle_changes_engine_and_replay_alike(workspace, clock):
    """One step function: the engine and replay read the same lifecycle value."""
    variant = _with_approval_days(3)
    engine = Engine(config_mod.load(workspace), clock, lifecycle=variant)
    try:
        o = to_approval(engine)
        assert o.deadline_at == (clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        [same] = replay_rows(engine.store, variant, [o.id], verify=True)
        assert same["ok"], same
        [other] = replay_rows(engine.store, LIFECYCLE, [o.id], verify=True)
        assert not other["ok"] and "deadline_at stored" in other["error"]

        no_cancel = dataclasses.replace(variant, transitions=tuple(
            t for t in variant.transitions if not (t.trigger == "cancel" and t.source == "paid")))
        strict = Engine(config_mod.load(workspace), clock, lifecycle=no_cancel)
        p = engine.place(**{**ORDER, "common_name": "shop.example.jp"})
        engine.fire(p.id, "pay")
        with pytest.raises(InvalidTransition):
            strict.fire(p.id, "cancel")
        engine.fire(p.id, "cancel")
        [refused] = replay_rows(engine.store, no_cancel, [p.id], verify=False)
        assert refused["error"] == "event 3 (cancel: paid → cancelled) is refused by this lifecycle"
        strict.close()
    finally:
        engine.close()
