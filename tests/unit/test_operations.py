"""Issue 19: the operator's engine operations (workflow.operations), on a real store."""
from datetime import timedelta

import pytest

from support import mailfolder
from support.helpers import ORDER, installed_order
from workflow.clock import parse_iso
from workflow.effects.daemon import Daemon
from workflow.errors import InvalidTransition, NotFound, ValidationError


installed = installed_order


def awaiting_mail(engine, **overrides):
    o = engine.place(**{**ORDER, "validation": "email", **overrides})
    engine.fire(o.id, "pay")
    Daemon(engine).run_once()
    o = engine.get(o.id)
    assert o.state == "awaiting_approval", o.reason
    return o


def test_find_filters_page_and_leave_out_the_csr(engine, monkeypatch):
    a = engine.place(**{**ORDER, "common_name": "www.例え.jp"})
    b = engine.place(**{**ORDER, "common_name": "shop.example.jp", "email": "b@example.jp"})
    c = engine.place(**{**ORDER, "contract": "C-9001"})  # rejected: contract inactive
    ids = sorted([a.id, b.id, c.id])
    assert [o.id for o in engine.find()] == ids
    assert [o.id for o in engine.find(cn="例え")] == [a.id]          # U-label
    assert [o.id for o in engine.find(cn="XN--R8JZ45G")] == [a.id]   # A-label, any case
    assert [o.id for o in engine.find(cn="example.jp")] == sorted([b.id, c.id])  # SAN too
    assert [o.id for o in engine.find(cn="%")] == []                 # no LIKE wildcard
    assert [o.id for o in engine.find(email="b@example.jp")] == [b.id]
    assert [o.id for o in engine.find(states=["rejected"])] == [c.id]
    assert [o.id for o in engine.find(states=["rejected", "ordered"], contract="C-1001")] == \
        sorted([a.id, b.id])
    from workflow.store import operator_reads
    monkeypatch.setattr(operator_reads, "PAGE", 1)  # every row its own page
    assert [o.id for o in engine.find(states=["ordered", "rejected"])] == ids
    assert [o.id for o in engine.find(states=["ordered", "rejected"], limit=2)] == ids[:2]
    first = list(engine.find(limit=2))
    rest = list(engine.find(after=first[-1].id))
    assert [o.id for o in first + rest] == ids
    assert all(o.csr is None for o in first + rest)
    with pytest.raises(ValidationError) as err:
        list(engine.find(states=["nope"]))
    assert err.value.field == "state"
    with pytest.raises(ValidationError) as err:
        engine.find(limit=0)
    assert err.value.field == "limit"


def test_find_expiring_within_and_renewal_of(engine, clock):
    o = installed(engine)
    not_after = o.certificate.not_after
    assert [x.id for x in engine.find(expiring_within=10)] == []
    clock.advance(timedelta(days=1))
    left = (parse_iso(not_after) - clock.now()).days + 1
    assert [x.id for x in engine.find(expiring_within=left)] == [o.id]
    new_id = engine.renew_now(o.id, actor="test")
    assert [x.id for x in engine.find(renewal_of=o.id)] == [new_id]


def test_pending_effects_retry_keeps_attempts(engine, clock):
    o = engine.place(**ORDER)
    pending = engine.pending_effects(o.id)
    assert [(p["effect"], p["param"], p["attempts"]) for p in pending] == \
        [("notify", "order_received", 0)]
    with engine.store.transaction() as tx:  # a failed try pushed it into the future
        tx.conn.execute("UPDATE outbox SET attempts = 2, next_at = '2099-01-01T00:00:00+00:00'")
    assert engine.retry(o.id, actor="test") == 1
    after = engine.pending_effects(o.id)[0]
    assert after["attempts"] == 2 and parse_iso(after["next_at"]) <= clock.now()
    Daemon(engine).run_once()
    assert engine.pending_effects(o.id) == []
    with pytest.raises(InvalidTransition):
        engine.retry(o.id)
    with pytest.raises(NotFound):
        engine.retry("20261201-0000000000000000")


def test_explain_tells_the_deadline_and_what_fires(engine):
    o = awaiting_mail(engine)
    why = engine.explain(o.id)
    assert why["deadline_trigger"] == "expire" and why["deadline_at"] == o.deadline_at
    assert "did not approve within 10 days" in why["deadline_reason"]
    assert "poll_ca" in [p["effect"] for p in why["pending"]]


def test_resend_approval_sends_the_same_valid_token(engine, workspace):
    o = awaiting_mail(engine)
    first = mailfolder.to(workspace, "admin@example.jp")
    assert engine.resend_approval(o.id, actor="test") == "admin@example.jp"
    mails = mailfolder.to(workspace, "admin@example.jp")
    assert len(mails) == len(first) + 1
    tokens = {mailfolder.token_in(m) for m in mails if "token=" in mailfolder.body(m)}
    assert len(tokens) == 1
    file_order = engine.place(**ORDER)
    with pytest.raises(InvalidTransition):
        engine.resend_approval(file_order.id)


def test_set_approver_reapplies_and_old_token_dies(engine, workspace):
    o = awaiting_mail(engine)
    old_token = mailfolder.token_in(mailfolder.to(workspace, "admin@example.jp")[-1])
    with pytest.raises(ValidationError) as err:
        engine.set_approver(o.id, "someone@example.jp", actor="test")
    assert err.value.field == "approver"
    moved = engine.set_approver(o.id, "webmaster@example.jp", actor="test")
    assert (moved.state, moved.approver) == ("submitted", "webmaster@example.jp")
    assert engine.history(o.id)[-1].trigger == "change_approver"
    Daemon(engine).run_once()
    assert engine.get(o.id).state == "awaiting_approval"
    new_token = mailfolder.token_in(mailfolder.to(workspace, "webmaster@example.jp")[-1])
    ca = engine.adapters.ca
    from adapters.base import BadInput
    with pytest.raises(BadInput):
        ca.approve(old_token)
    ca.approve(new_token)
    engine.poll_now(engine.get(o.id).data["application_id"])
    Daemon(engine).run_once()
    assert engine.get(o.id).state == "installed"


def test_set_approver_before_payment_is_recorded_without_new_mail(engine, workspace):
    o = engine.place(**{**ORDER, "validation": "email"})
    Daemon(engine).run_once()
    before = len(mailfolder.messages(workspace))
    moved = engine.set_approver(o.id, "hostmaster@example.jp", actor="test")
    assert (moved.state, moved.approver, moved.version) == ("ordered", "hostmaster@example.jp", 2)
    Daemon(engine).run_once()
    assert len(mailfolder.messages(workspace)) == before


def test_renew_now_opens_one_renewal(engine):
    o = installed(engine)
    new_id = engine.renew_now(o.id, actor="test")
    assert engine.get(new_id).renewal_of == o.id
    with pytest.raises(ValidationError) as err:
        engine.renew_now(o.id)
    assert err.value.field == "renewal_of"
    with pytest.raises(InvalidTransition):
        engine.renew_now(new_id)


def test_revoke_local_ca_publishes_crl_and_tells_customer(engine, workspace):
    from cryptography import x509
    o = installed(engine)
    with pytest.raises(ValidationError) as err:
        engine.revoke(o.id, "becauseISaidSo")
    assert err.value.field == "reason"
    r = engine.revoke(o.id, "keyCompromise", actor="test")
    assert (r.state, r.reason) == ("revoked", "keyCompromise")
    crl = x509.load_pem_x509_crl(engine.adapters.ca.crl_pem().encode())
    revoked = crl.get_revoked_certificate_by_serial_number(int(o.certificate.serial, 16))
    assert revoked is not None
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.key_compromise
    Daemon(engine).run_once()
    assert any("失効" in m["Subject"] for m in mailfolder.to(workspace, ORDER["email"]))
    with pytest.raises(InvalidTransition):
        engine.revoke(o.id, "superseded")
    renewal = engine.get(engine.renew_now(o.id, actor="test"))  # a new key and certificate
    assert renewal.renewal_of == o.id


def test_failed_notifications_retry_and_ack(engine):
    o = engine.place(**ORDER)
    with engine.store.transaction() as tx:
        tx.conn.execute("UPDATE outbox SET status = 'failed', attempts = 5, "
                        "last_error = 'smtp down' WHERE order_id = ?", (o.id,))
    failed = engine.failed_notifications()
    assert [(f["order_id"], f["template"], f["attempts"]) for f in failed] == \
        [(o.id, "order_received", 5)]
    assert engine.summary()["failed_notifications"] == 1
    with pytest.raises(NotFound):
        engine.retry_notifications([99999])
    assert engine.retry_notifications([failed[0]["id"]]) == 1
    assert engine.failed_notifications() == []
    with engine.store.transaction() as tx:
        tx.conn.execute("UPDATE outbox SET status = 'failed'")
    assert engine.ack_notifications() == 1
    s = engine.summary()
    assert s["failed_notifications"] == 0 and s["failed_effects"] == []


def test_migration_003_indexes_orders_already_there(tmp_path):
    """A database made before migration 003 gets its names filled in, so --cn finds
    the orders it already held."""
    import sqlite3

    import sqlite_utils

    from workflow.store.schema import ORDER_COLUMNS, _m001_initial
    from workflow.store.sqlite import SQLiteStore
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    _m001_initial(sqlite_utils.Database(conn))
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1, '001_initial', 'then')")
    row = dict.fromkeys(ORDER_COLUMNS)
    row.update(id="20261101-00000000000000aa", state="ordered", version=1, entered_seq=1,
               common_name="www.xn--r8jz45g.jp", sans='["xn--r8jz45g.jp"]', plan="basic",
               contract="C-1001", created_at="2026-11-01T00:00:00Z",
               updated_at="2026-11-01T00:00:00Z")
    conn.execute(f"INSERT INTO orders ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                 tuple(row.values()))
    conn.close()
    store = SQLiteStore(str(path))
    try:
        assert [r["id"] for r in store.find_orders(cn="例え")] == [row["id"]]
        from workflow.store.schema import SCHEMA_VERSION
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()
