"""`certflow serve` in this process (Starlette's TestClient on a real engine and store):
the approval page's refusals, the console's login, CSRF, throttle and headers, and the
operator commands."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from support.helpers import ORDER, configure, installed_order
from support.inproc import invoke
from support.web import OPERATOR, PASSWORD, mailed_approval_url
from workflow import config as config_mod, operators
from workflow.effects.daemon import Daemon
from workflow.engine import Engine
from workflow.web.app import create_app
from workflow.web.security import safe_next

BASE = "http://127.0.0.1:8080"


@pytest.fixture
def web(workspace, clock):
    configure(workspace, {"web.public_url": BASE})
    engine = Engine(config_mod.load(workspace), clock)
    operators.add(engine, OPERATOR, PASSWORD)
    yield engine, TestClient(create_app(engine), base_url=BASE)
    engine.close()


def awaiting(engine, **fields):
    order = engine.place(**{**ORDER, "validation": "email", **fields})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "awaiting_approval"
    url = mailed_approval_url(engine.config.path)
    return order.id, url.split("?token=")[1]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, name=OPERATOR, password=PASSWORD, next_="/ops/"):
    form = client.get("/ops/login")
    return client.post("/ops/login", data={"csrf": csrf_of(form.text), "name": name,
                                           "password": password, "next": next_},
                       follow_redirects=False)


def test_the_mailed_link_is_the_public_url_and_the_page_escapes_customer_text(web):
    engine, client = web
    order_id, token = awaiting(engine, organization="<script>alert(1)</script> & Co.")
    assert mailed_approval_url(engine.config.path) == f"{BASE}/approve?token={token}"
    before = engine.get(order_id)
    page = client.get(f"/approve?token={token}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co." in page.text
    assert "<script>" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert engine.get(order_id) == before


def test_english_when_the_order_is_in_english_or_asked_for(web):
    engine, client = web
    _, token = awaiting(engine, language="en")
    assert "Approve a server certificate" in client.get(f"/approve?token={token}").text
    assert "承認する" in client.get(f"/approve?token={token}&lang=ja").text


def test_unknown_used_and_expired_tokens_are_clear_pages_and_change_nothing(web, clock):
    engine, client = web
    order_id, token = awaiting(engine)
    unknown = client.get("/approve?token=" + "A" * 43)
    assert unknown.status_code == 404 and "見つかりません" in unknown.text
    assert client.get("/approve").status_code == 404
    csrf = csrf_of(client.get(f"/approve?token={token}").text)

    forged = client.post("/approve", data={"token": token, "answer": "approve"})
    assert forged.status_code == 403
    assert engine.get(order_id).state == "awaiting_approval"

    clock.advance(timedelta(days=11))  # past the token's life (the order's deadline)
    expired = client.post("/approve", data={"token": token, "csrf": csrf, "answer": "approve"})
    assert expired.status_code == 410 and "期限切れ" in expired.text
    assert [a["status"] for a in engine.adapters.ca.applications()] == ["pending"]
    clock.advance(timedelta(days=-11))

    assert client.post("/approve", data={"token": token, "csrf": csrf,
                                         "answer": "approve"}).status_code == 200
    used = client.get(f"/approve?token={token}")
    assert used.status_code == 410 and "already used" in used.text
    again = client.post("/approve", data={"token": token, "csrf": csrf, "answer": "decline"})
    assert again.status_code == 410
    assert engine.get(order_id).state == "awaiting_approval"  # approved; the daemon issues


def test_console_login_session_cookie_and_no_open_redirect(web):
    engine, client = web
    assert client.get("/ops/orders", follow_redirects=False).headers["location"] == \
        "/ops/login?next=/ops/orders"
    done = login(client, next_="https://evil.example/")
    assert done.status_code == 303 and done.headers["location"] == "/ops/"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # http here; https behind a proxy or public_url sets it
    assert client.get("/ops/", follow_redirects=False).status_code == 200
    english = client.get("/ops/orders?lang=en")
    assert "<h1>Orders</h1>" in english.text and 'lang="en"' in english.text
    assert "<h1>Orders</h1>" in client.get("/ops/orders").text  # the choice is kept
    for target in ("//evil.example/ops/", "/ops/\\evil", "https://x/ops/", "/ops/\nx", None):
        assert safe_next(target) == "/ops/"
    assert safe_next("/ops/orders?state=on_hold") == "/ops/orders?state=on_hold"


def test_a_forged_or_an_orphaned_session_is_no_login(web):
    engine, client = web
    login(client)
    cookie = client.cookies.get("certflow_session")
    body, mac = cookie.split(".")
    client.cookies.set("certflow_session", body + "." + mac[::-1])
    assert client.get("/ops/", follow_redirects=False).status_code == 303
    client.cookies.set("certflow_session", cookie)
    assert client.get("/ops/", follow_redirects=False).status_code == 200
    operators.remove(engine, OPERATOR)
    assert client.get("/ops/", follow_redirects=False).status_code == 303


def test_login_failures_are_throttled(web, clock):
    engine, client = web
    for _ in range(5):
        assert login(client, password="not the password").status_code == 401
    refused = login(client)  # the right password, too soon
    assert refused.status_code == 429 and "60" in refused.text
    clock.advance(timedelta(seconds=61))
    assert login(client).status_code == 303


def test_console_actions_need_the_csrf_token_and_record_the_operator(web):
    engine, client = web
    order = engine.place(**ORDER)
    login(client)
    assert client.post(f"/ops/orders/{order.id}/cancel", data={"reason": "x"}).status_code == 403
    assert engine.get(order.id).state == "ordered"
    page = client.get(f"/ops/orders/{order.id}")
    done = client.post(f"/ops/orders/{order.id}/cancel",
                       data={"csrf": csrf_of(page.text), "reason": "customer asked"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert engine.get(order.id).state == "cancelled"
    last = engine.history(order.id)[-1]
    assert (last.trigger, last.actor, last.data["reason"]) == ("cancel", OPERATOR, "customer asked")
    refused = client.post(f"/ops/orders/{order.id}/resume", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 409 and "cancelled" in refused.text


def test_order_pages_show_no_secrets(web):
    engine, client = web
    order_id, token = awaiting(engine)
    login(client)
    for path in (f"/ops/orders/{order_id}", "/ops/orders", "/ops/", "/ops/hold"):
        html = client.get(path).text
        assert token not in html and "PRIVATE KEY" not in html and "CERTIFICATE REQUEST" not in html
    found = client.get("/ops/orders?q=EXAMPLE.jp&state=awaiting_approval").text
    assert order_id in found
    assert order_id not in client.get("/ops/orders?contract=C-1002").text


def test_operator_add_reads_stdin_and_stores_only_a_scrypt_hash(workspace):
    assert invoke(workspace, "operator", "add", "bob", stdin="a long password\n").exit_code == 0
    engine = Engine(config_mod.load(workspace))
    stored = engine.store.operator("bob")["password_hash"]
    assert stored.startswith("scrypt$") and "a long password" not in stored
    assert operators.verify(engine, "bob", "a long password")
    assert not operators.verify(engine, "bob", "a long passwort")
    again = invoke(workspace, "operator", "add", "bob", stdin="another password\n")
    assert again.exit_code == 2 and "exists" in again.stderr
    assert invoke(workspace, "operator", "add", "cli", stdin="a long password\n").exit_code == 2
    assert invoke(workspace, "operator", "add", "eve", stdin="short\n").exit_code == 2
    assert invoke(workspace, "operator", "remove", "bob").exit_code == 0
    assert invoke(workspace, "operator", "remove", "bob").exit_code == 2
    engine.close()


def test_serve_refuses_a_bad_listen_address(workspace):
    configure(workspace, {"web.listen": "127.0.0.1:notaport"})
    refused = invoke(workspace, "serve")
    assert refused.exit_code == 2 and "web.listen" in refused.stderr


def act(client, order_id, action, **form):
    page = client.get(f"/ops/orders/{order_id}")
    assert f'id="action-{action}"' in page.text, page.text
    return client.post(f"/ops/orders/{order_id}/{action}",
                       data={"csrf": csrf_of(page.text), **form}, follow_redirects=False)


def test_renew_now_and_revoke_are_the_engine_operations_with_the_operator_as_actor(web):
    engine, client = web
    order_id = installed_order(engine).id
    login(client)
    renewed = act(client, order_id, "renew")
    assert renewed.status_code == 303
    new_id = renewed.headers["location"].split("/ops/orders/")[1].split("?")[0]
    new = engine.get(new_id)
    assert new.renewal_of == order_id and engine.history(new_id)[0].actor == OPERATOR
    assert act(client, order_id, "renew").status_code == 409  # it has its renewal already

    assert act(client, order_id, "revoke", reason="keyCompromise").status_code == 303
    revoked = engine.get(order_id)
    assert revoked.state == "revoked"
    assert (engine.history(order_id)[-1].actor, engine.history(order_id)[-1].trigger) == \
        (OPERATOR, "revoke")


def test_set_approver_resend_and_pending_work_on_the_order_page(web):
    engine, client = web
    order_id, token = awaiting(engine)
    login(client)
    page = client.get(f"/ops/orders/{order_id}").text
    assert 'id="pending"' in page and "poll_ca" in page
    assert act(client, order_id, "resend_approval").status_code == 303
    assert act(client, order_id, "set_approver", address="evil@elsewhere.example"
               ).status_code == 409
    assert act(client, order_id, "set_approver", address="webmaster@example.jp"
               ).status_code == 303
    changed = engine.get(order_id)
    assert changed.approver == "webmaster@example.jp"
    assert engine.history(order_id)[-1].actor == OPERATOR
    assert act(client, order_id, "retry").status_code == 303


def test_failed_notifications_are_listed_retried_and_acknowledged(workspace, clock, closed_port):
    configure(workspace, {"notify.kind": "smtp", "notify.host": "127.0.0.1",
                          "notify.port": closed_port, "effects.max_attempts": 1})
    engine = Engine(config_mod.load(workspace), clock)
    operators.add(engine, OPERATOR, PASSWORD)
    client = TestClient(create_app(engine), base_url=BASE)
    order = engine.place(**ORDER)
    Daemon(engine).run_once()
    [failed] = engine.failed_notifications()
    login(client)
    page = client.get("/ops/notifications")
    assert order.id in page.text and "order_received" in page.text
    csrf = csrf_of(page.text)
    assert client.post("/ops/notifications", data={"do": "retry"}).status_code == 403
    assert client.post("/ops/notifications", data={"csrf": csrf, "do": "retry",
                                                   "ids": str(failed["id"])}).status_code == 200
    assert engine.failed_notifications() == []
    Daemon(engine).run_once()
    assert len(engine.failed_notifications()) == 1
    client.post("/ops/notifications", data={"csrf": csrf, "do": "ack"})
    assert engine.failed_notifications() == []
    assert "failed-notifications\">0<" in client.get("/ops/").text
    engine.close()


def test_a_link_of_a_cancelled_order_says_withdrawn(web):
    engine, client = web
    order_id, token = awaiting(engine)
    engine.fire(order_id, "cancel", reason="customer asked")
    Daemon(engine).run_once()  # the CA's application is withdrawn
    gone = client.get(f"/approve?token={token}")
    assert gone.status_code == 410 and "取り消されました" in gone.text
    assert "承認する" not in gone.text


def test_the_session_cookie_is_secure_behind_https(workspace, clock):
    configure(workspace, {"web.public_url": "https://certs.hosting.example"})
    engine = Engine(config_mod.load(workspace), clock)
    client = TestClient(create_app(engine), base_url="https://certs.hosting.example")
    assert "Secure" in client.get("/ops/login").headers["set-cookie"]
    engine.close()


def test_an_approval_while_the_store_is_busy_is_still_recorded(web, workspace):
    import subprocess
    import sys
    from support.helpers import HOLD_LOCK
    engine, client = web
    order_id, token = awaiting(engine)
    csrf = csrf_of(client.get(f"/approve?token={token}").text)
    other = engine.place(**{**ORDER, "common_name": "shop.example.jp"})
    login(client)
    console_csrf = csrf_of(client.get(f"/ops/orders/{other.id}").text)
    engine.store.conn.execute("PRAGMA busy_timeout = 50")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, engine.config["store"]["path"]],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        done = client.post("/approve", data={"token": token, "csrf": csrf, "answer": "approve"})
        assert done.status_code == 200 and "承認しました" in done.text
        assert client.get(f"/ops/orders/{other.id}").status_code == 200  # reads need no lock
        busy = client.post(f"/ops/orders/{other.id}/cancel", data={"csrf": console_csrf})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    finally:
        holder.communicate("\n", timeout=30)
    assert [a["status"] for a in engine.adapters.ca.applications()] == ["approved"]
    assert engine.get(other.id).state == "ordered"
