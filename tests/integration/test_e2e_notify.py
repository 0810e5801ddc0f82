"""Issue 6 end to end through the CLI: customer mail over SMTP (plain and STARTTLS), the
signed ticket webhook with retries and failures the operator can see, English mail
chosen per order."""
from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re
from collections import defaultdict


from support.notify import SMTP_PASSWORD, SMTP_USER, WEBHOOK_SECRET
from support.helpers import cli_json, configure, place_args, run_cli

CUSTOMER = "owner@example.jp"
SENDER = "certflow@hosting.example"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def place_pay_run(ws, **overrides) -> dict:
    """Place and pay an order, run one daemon pass; the order as `order show` has it."""
    order = cli_json(ws, "order", "place", *place_args(**overrides))
    run_cli(ws, "order", "pay", order["id"], check=True)
    run_cli(ws, "daemon", "--once", check=True)
    return cli_json(ws, "order", "show", order["id"])


def by_template(received) -> dict[str, list]:
    """Received SMTP messages grouped by the template that made them."""
    out: dict[str, list] = defaultdict(list)
    for item in received:
        out[str(item.message["X-Certflow-Template"])].append(item)
    return out


def assert_well_formed_customer_mail(item, common_name: str) -> None:
    """The headers issue 6 asks for, a Japanese UTF-8 text body naming the CN, no key."""
    msg = item.message
    assert item.rcpt_tos == [CUSTOMER]
    assert SENDER in str(msg["From"])
    assert str(msg["To"]) == CUSTOMER
    raw_subject = email.message_from_bytes(item.raw, policy=email.policy.compat32)["Subject"]
    assert raw_subject.isascii() and "=?utf-8?" in raw_subject.lower(), raw_subject
    subject = str(msg["Subject"])
    assert common_name in subject and JAPANESE.search(subject), subject
    assert email.utils.parsedate_to_datetime(str(msg["Date"])).tzinfo is not None
    assert MESSAGE_ID.match(str(msg["Message-ID"])), msg["Message-ID"]
    assert str(msg["Auto-Submitted"]) == "auto-generated"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert common_name in body and JAPANESE.search(body)
    assert b"PRIVATE KEY" not in item.raw and "PRIVATE KEY" not in body


def test_smtp_delivers_japanese_customer_mail(workspace, smtp_server):
    configure(workspace, {"notify.kind": "smtp", "notify.host": "127.0.0.1",
                          "notify.port": smtp_server.port})

    order = place_pay_run(workspace)

    assert order["state"] == "installed"
    mails = by_template(smtp_server.received)
    for template in ("order_received", "work_started"):
        [item] = mails[template]
        assert_well_formed_customer_mail(item, "www.example.jp")
        assert str(item.message["X-Certflow-Order"]) == order["id"]
    ids = [str(item.message["Message-ID"]) for item in smtp_server.received]
    assert len(ids) == len(set(ids)), ids
    assert not list((workspace.parent / "var/mail").glob("*.eml")), "smtp must replace the folder"


def test_smtp_starttls_with_login(workspace, smtp_starttls_server, tls_ca):
    _, bundle = tls_ca
    configure(workspace, {"notify.kind": "smtp", "notify.host": "127.0.0.1",
                          "notify.port": smtp_starttls_server.port, "notify.starttls": True,
                          "notify.ca_bundle": bundle, "notify.username": SMTP_USER,
                          "notify.password": SMTP_PASSWORD})

    order = place_pay_run(workspace)

    assert order["state"] == "installed"
    assert smtp_starttls_server.received
    assert all(item.tls and item.login == SMTP_USER for item in smtp_starttls_server.received)
    mails = by_template(smtp_starttls_server.received)
    for template in ("order_received", "work_started"):
        [item] = mails[template]
        assert_well_formed_customer_mail(item, "www.example.jp")
        assert SMTP_PASSWORD.encode() not in item.raw


def test_language_is_chosen_per_order(workspace, smtp_server):
    configure(workspace, {"notify.kind": "smtp", "notify.host": "127.0.0.1",
                          "notify.port": smtp_server.port})

    english = place_pay_run(workspace, language="en")
    japanese = place_pay_run(workspace, common_name="shop.example.jp")

    assert english["state"] == japanese["state"] == "installed"
    per_order = defaultdict(list)
    for item in smtp_server.received:
        per_order[str(item.message["X-Certflow-Order"])].append(item.message)
    templates = {str(m["X-Certflow-Template"]) for m in per_order[english["id"]]}
    assert {"order_received", "work_started", "installed"} <= templates
    for msg in per_order[english["id"]]:
        subject, body = str(msg["Subject"]), msg.get_content()
        assert str(msg["Content-Language"]) == "en"
        assert "www.example.jp" in subject and "www.example.jp" in body
        assert not JAPANESE.search(subject) and not JAPANESE.search(body), (subject, body)
    received = [m for m in per_order[english["id"]]
                if str(m["X-Certflow-Template"]) == "order_received"]
    assert "received your order" in received[0].get_content()
    assert per_order[japanese["id"]]
    for msg in per_order[japanese["id"]]:
        assert str(msg["Content-Language"]) == "ja"
        assert JAPANESE.search(str(msg["Subject"])) and JAPANESE.search(msg.get_content())


# --- the ticket webhook --------------------------------------------------------------


def use_webhook(workspace, sink, **settings) -> None:
    configure(workspace, {"notify.kind": "webhook", "notify.url": sink.url,
                          "notify.secret": WEBHOOK_SECRET, **settings})


def deliveries(sink) -> dict[str, list[dict]]:
    """Webhook requests grouped by their Idempotency-Key, in arrival order."""
    out: dict[str, list[dict]] = defaultdict(list)
    for request in sink.requests:
        out[request["headers"]["Idempotency-Key"]].append(request)
    return out


def test_webhook_messages_arrive_signed(workspace, webhook_server):
    use_webhook(workspace, webhook_server)

    order = place_pay_run(workspace)

    assert order["state"] == "installed"
    assert webhook_server.requests
    assert all(r["signed"] for r in webhook_server.requests)
    documents = [json.loads(r["body"]) for r in webhook_server.requests]
    by_name = {d["template"]: d for d in documents}
    for template in ("order_received", "work_started", "installed"):
        doc = by_name[template]
        assert doc["to"] == CUSTOMER and doc["order_id"] == order["id"]
        assert "www.example.jp" in doc["subject"] and JAPANESE.search(doc["subject"])
        assert "www.example.jp" in doc["body"]
    assert all("PRIVATE KEY" not in r["body"].decode() for r in webhook_server.requests)
    assert all(len(group) == 1 for group in deliveries(webhook_server).values())


def test_failing_webhook_is_retried_then_listed_for_the_operator(workspace, webhook_server):
    webhook_server.statuses = [(500, {})] * 200      # the ticket system is down throughout
    use_webhook(workspace, webhook_server, **{"effects.max_attempts": 3,
                                              "effects.backoff_seconds": 0})

    order = place_pay_run(workspace)

    # notifications never hold the order: it went its whole way regardless
    assert order["state"] == "installed"
    groups = deliveries(webhook_server)
    assert groups and all(len(tries) == 3 for tries in groups.values()), \
        {k: len(v) for k, v in groups.items()}
    for tries in groups.values():
        assert all(t["signed"] for t in tries)
        documents = [json.loads(t["body"]) for t in tries]
        # a retry is recognisably the same message
        assert len({(d["template"], d["message_id"]) for d in documents}) == 1
        # and says the same thing, even when the order moved on between tries
        assert len({d["body"] for d in documents}) == 1, documents[0]["template"]
    status = cli_json(workspace, "status")
    failed = [f for f in status["failed_effects"] if f["order_id"] == order["id"]]
    assert {"order_received", "work_started", "installed"} <= {f["param"] for f in failed}
    for row in failed:
        assert row["effect"] == "notify" and row["attempts"] == 3
        assert "500" in row["last_error"] and WEBHOOK_SECRET not in row["last_error"]
    assert status["on_hold"] == [] and status["pending_effects"] == 0


def test_webhook_failure_is_retried_after_the_backoff(workspace, webhook_server):
    webhook_server.statuses = [(500, {})]               # the first delivery fails once
    use_webhook(workspace, webhook_server, **{"effects.backoff_seconds": 600})

    order = place_pay_run(workspace)

    assert order["state"] == "installed"
    first = webhook_server.requests[0]
    assert json.loads(first["body"])["template"] == "order_received"
    key = first["headers"]["Idempotency-Key"]
    assert len(deliveries(webhook_server)[key]) == 1
    assert cli_json(workspace, "status")["pending_effects"] == 1

    run_cli(workspace, "daemon", "--once", check=True)   # not due yet: backoff
    assert len(deliveries(webhook_server)[key]) == 1

    run_cli(workspace, "daemon", "--once", check=True, prefix=["faketime", "+2 hours"])
    [_, retry] = deliveries(webhook_server)[key]
    assert retry["signed"] and retry["body"] == first["body"]
    status = cli_json(workspace, "status", prefix=["faketime", "+2 hours"])
    assert status["pending_effects"] == 0 and status["failed_effects"] == []
