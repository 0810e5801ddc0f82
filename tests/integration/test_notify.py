"""Notifiers against real loopback servers: aiosmtpd (plain, STARTTLS+AUTH, TLS) and HTTP."""
from __future__ import annotations

import json

import pytest

from adapters.base import Attachment, PermanentError, TransientError
from adapters.notify.smtp import SmtpNotifier
from adapters.notify.webhook import WebhookNotifier
from support.notify import SMTP_PASSWORD, SMTP_USER, WEBHOOK_SECRET, notice


CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"


# --- SMTP ---------------------------------------------------------------------------


def test_smtp_delivers_a_well_formed_japanese_mail(smtp_server, builder):
    notifier = SmtpNotifier(smtp_server.host, smtp_server.port, builder)
    notifier.send(notice())
    notifier.send(notice("work_started", key="ord-0042:2:notify:work_started"))

    first, second = smtp_server.received
    assert first.mail_from == "ssl@provider.example.jp"
    assert first.rcpt_tos == ["customer@example.jp"]
    msg = first.message
    assert msg["Subject"] == "【SSLサーバー証明書】お申し込みを受け付けました [www.example.jp]"
    for header in ("From", "To", "Subject", "Date", "Message-ID"):
        assert msg[header], header
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert "www.example.jp" in body and "ご担当者様" in body
    assert b"PRIVATE KEY" not in first.raw and "PRIVATE KEY" not in body
    assert "www.example.jp" in second.message["Subject"]


def test_smtp_retry_carries_the_same_message_id(smtp_server, builder):
    notifier = SmtpNotifier(smtp_server.host, smtp_server.port, builder)
    notifier.send(notice(key="ord-0042:1:notify"))
    notifier.send(notice(key="ord-0042:1:notify"))
    notifier.send(notice(key="ord-0042:3:notify"))
    ids = [r.message["Message-ID"] for r in smtp_server.received]
    assert ids[0] == ids[1] != ids[2]


def test_smtp_english_and_attachments(smtp_server, builder):
    notifier = SmtpNotifier(smtp_server.host, smtp_server.port, builder)
    notifier.send(notice("delivered", "en", attachments=(
        Attachment("www.example.jp.crt", CERT_PEM), Attachment("chain.pem", CERT_PEM))))
    msg = smtp_server.received[0].message
    assert msg["Subject"] == "[SSL certificate] Your certificate has been issued [www.example.jp]"
    assert msg.get_content_type() == "multipart/mixed"
    attached = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert attached == {"www.example.jp.crt": CERT_PEM, "chain.pem": CERT_PEM}


def test_smtp_starttls_with_login(smtp_starttls_server, tls_ca, builder):
    _, bundle = tls_ca
    notifier = SmtpNotifier(smtp_starttls_server.host, smtp_starttls_server.port, builder,
                            starttls=True, username=SMTP_USER, password=SMTP_PASSWORD,
                            ca_bundle=bundle)
    notifier.check()
    notifier.send(notice())
    received = smtp_starttls_server.received[0]
    assert received.tls and received.login == SMTP_USER
    assert "www.example.jp" in received.message["Subject"]
    assert SMTP_PASSWORD not in repr(notifier)


def test_smtp_wrong_password_is_permanent_and_never_shown(smtp_starttls_server, tls_ca,
                                                          builder):
    _, bundle = tls_ca
    wrong = "not-the-Password-42"
    notifier = SmtpNotifier(smtp_starttls_server.host, smtp_starttls_server.port, builder,
                            starttls=True, username=SMTP_USER, password=wrong,
                            ca_bundle=bundle)
    with pytest.raises(PermanentError) as info:
        notifier.send(notice())
    assert "login refused" in str(info.value)
    assert wrong not in str(info.value) and wrong not in repr(info.value.__dict__)
    assert smtp_starttls_server.received == []


def test_smtp_starttls_refuses_an_untrusted_certificate(smtp_starttls_server, builder):
    notifier = SmtpNotifier(smtp_starttls_server.host, smtp_starttls_server.port, builder,
                            starttls=True)          # system trust store: trustme CA unknown
    with pytest.raises(PermanentError, match="not trusted"):
        notifier.send(notice())
    assert smtp_starttls_server.received == []


def test_smtp_server_requiring_starttls_refuses_plain_mail(smtp_starttls_server, builder):
    notifier = SmtpNotifier(smtp_starttls_server.host, smtp_starttls_server.port, builder)
    with pytest.raises(PermanentError, match=r"smtp 127\.0\.0\.1:\d+: 530"):
        notifier.send(notice())


def test_smtp_implicit_tls(smtp_tls_server, tls_ca, builder):
    _, bundle = tls_ca
    notifier = SmtpNotifier(smtp_tls_server.host, smtp_tls_server.port, builder,
                            tls=True, ca_bundle=bundle)
    notifier.send(notice())
    assert smtp_tls_server.received[0].tls


def test_smtp_recipient_refusals_map_by_reply_code(smtp_server, builder):
    smtp_server.refuse = {"gone@example.jp": "550 5.1.1 no such user",
                          "full@example.jp": "452 4.2.2 mailbox full"}
    notifier = SmtpNotifier(smtp_server.host, smtp_server.port, builder)
    with pytest.raises(PermanentError, match="550") as info:
        notifier.send(notice(to="gone@example.jp"))
    assert not isinstance(info.value, TransientError)
    with pytest.raises(TransientError, match="452"):
        notifier.send(notice(to="full@example.jp"))
    assert smtp_server.received == []


def test_smtp_check_passes_against_a_live_server(smtp_server, builder):
    SmtpNotifier(smtp_server.host, smtp_server.port, builder).check()
    assert smtp_server.received == []               # doctor sends nothing


# --- webhook ------------------------------------------------------------------------


def test_webhook_posts_signed_json(webhook_server, builder):
    notifier = WebhookNotifier(webhook_server.url, WEBHOOK_SECRET, builder)
    notifier.send(notice("delivered", attachments=(Attachment("chain.pem", CERT_PEM),)))
    (request,) = webhook_server.requests
    assert request["signed"]
    assert request["headers"]["Idempotency-Key"] == "ord-0042:1:notify:order_received"
    document = json.loads(request["body"])
    assert document["template"] == "delivered"
    assert document["to"] == "customer@example.jp"
    assert document["order_id"] == "ord-0042"
    assert document["language"] == "ja"
    assert document["idempotency_key"] == "ord-0042:1:notify:order_received"
    assert "www.example.jp" in document["subject"] and "www.example.jp" in document["body"]
    assert document["attachments"] == [{"filename": "chain.pem",
                                        "content": CERT_PEM.decode()}]


def test_webhook_wrong_secret_is_refused_by_the_receiver(webhook_server, builder):
    notifier = WebhookNotifier(webhook_server.url, "not-the-secret", builder)
    with pytest.raises(PermanentError, match="401") as info:
        notifier.send(notice())
    assert info.value.status == 401
    assert "not-the-secret" not in str(info.value) and "key=abc" not in str(info.value)


def test_webhook_failing_endpoint_is_transient_with_retry_after(webhook_server, builder):
    webhook_server.statuses = [(500, {}), (503, {"Retry-After": "7"})]
    notifier = WebhookNotifier(webhook_server.url, WEBHOOK_SECRET, builder)
    with pytest.raises(TransientError, match="500") as info:
        notifier.send(notice())
    assert info.value.retry_after is None
    with pytest.raises(TransientError, match="503") as info:
        notifier.send(notice())
    assert info.value.retry_after == 7.0
    notifier.send(notice())                          # the retry gets through
    keys = {r["headers"]["Idempotency-Key"] for r in webhook_server.requests}
    assert len(webhook_server.requests) == 3 and len(keys) == 1


def test_webhook_client_error_is_permanent(webhook_server, builder):
    webhook_server.statuses = [(400, {})]
    notifier = WebhookNotifier(webhook_server.url, WEBHOOK_SECRET, builder)
    with pytest.raises(PermanentError, match="HTTP 400") as info:
        notifier.send(notice())
    assert not isinstance(info.value, TransientError) and info.value.status == 400


def test_webhook_over_https_with_a_ca_bundle(webhook_https_server, tls_ca, builder):
    _, bundle = tls_ca
    WebhookNotifier(webhook_https_server.url, WEBHOOK_SECRET, builder,
                    ca_bundle=bundle).send(notice())
    assert webhook_https_server.requests[0]["signed"]
    with pytest.raises(PermanentError, match="not trusted"):
        WebhookNotifier(webhook_https_server.url, WEBHOOK_SECRET, builder).send(notice())


def test_webhook_check_accepts_any_answer_below_500(webhook_server, builder):
    WebhookNotifier(webhook_server.url, WEBHOOK_SECRET, builder).check()
