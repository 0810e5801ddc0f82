"""Notifiers without a server: SMTP and webhook settings checked, unreachable servers are
transient, webhook signatures."""
from __future__ import annotations

import pytest

from adapters.base import BadInput, TransientError
from adapters.notify.smtp import SmtpNotifier
from adapters.notify.webhook import WebhookNotifier, sign, verify_signature
from support.helpers import free_port
from support.notify import WEBHOOK_SECRET, notice


# --- SMTP ---------------------------------------------------------------------------


def test_unreachable_smtp_is_transient_and_doctor_names_it(builder):
    port = free_port()                               # nothing listens there
    notifier = SmtpNotifier("127.0.0.1", port, builder, timeout=5.0)
    with pytest.raises(TransientError, match=f"smtp 127.0.0.1:{port}") as info:
        notifier.send(notice())
    assert info.value.port == port
    with pytest.raises(TransientError, match=f"smtp 127.0.0.1:{port}"):
        notifier.check()


def test_smtp_config_is_validated(builder):
    with pytest.raises(BadInput) as info:
        SmtpNotifier("127.0.0.1", 25, builder, starttls=True, tls=True)
    assert info.value.field == "notify.tls"
    with pytest.raises(BadInput) as info:
        SmtpNotifier("127.0.0.1", 70000, builder)
    assert info.value.field == "notify.port"
    with pytest.raises(BadInput) as info:
        SmtpNotifier("127.0.0.1", 25, builder, ca_bundle="/nonexistent/ca.pem")
    assert info.value.field == "notify.ca_bundle"


# --- webhook ------------------------------------------------------------------------


def test_webhook_unreachable_is_transient(builder):
    url = f"http://127.0.0.1:{free_port()}/hook"
    notifier = WebhookNotifier(url, WEBHOOK_SECRET, builder, timeout=5.0)
    with pytest.raises(TransientError, match="webhook http://127.0.0.1"):
        notifier.send(notice())
    with pytest.raises(TransientError, match="webhook http://127.0.0.1"):
        notifier.check()


def test_signature_helpers():
    body = b'{"template":"order_received"}'
    header = sign("k", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("k", body, header)
    assert not verify_signature("k", body + b" ", header)
    assert not verify_signature("other", body, header)
    assert not verify_signature("k", body, None)
    assert not verify_signature("k", body, "md5=abc")


def test_webhook_config_is_validated(builder):
    for url, field in (("ftp://x/y", "notify.url"), ("http:///nohost", "notify.url")):
        with pytest.raises(BadInput) as info:
            WebhookNotifier(url, "s", builder)
        assert info.value.field == field
    with pytest.raises(BadInput) as info:
        WebhookNotifier("https://tickets.example/hook", "", builder)
    assert info.value.field == "notify.secret"
