"""Loopback servers for notifier tests: an aiosmtpd sink and a signature-checking webhook;
the notice they send and the ``builder`` fixture that renders it."""
from __future__ import annotations

import email
import email.policy
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from adapters.base import Notice
from adapters.notify.messages import MessageBuilder
from adapters.notify.webhook import SIGNATURE_HEADER, verify_signature
from support.helpers import free_port
from support.webserver import Answer, Request

SMTP_USER = "certflow"
SMTP_PASSWORD = "s3cret-Pa55word"
WEBHOOK_SECRET = "webhook-shared-secret"

CONTEXT = {
    "order_id": "ord-0042", "common_name": "www.example.jp",
    "names": ["www.example.jp", "example.jp"], "plan": "basic", "contract": "C-7",
    "validation": "file", "approver": None,
    "deadline_at": datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc), "reason": None,
    "certificate": None, "url": None, "renewal_of": None, "expires_at": None,
}


def notice(template="order_received", language="ja", key="ord-0042:1:notify:order_received",
           to="customer@example.jp", attachments=(), **context) -> Notice:
    return Notice(template, to, language, {**CONTEXT, **context}, key, attachments)


@pytest.fixture
def builder() -> MessageBuilder:
    return MessageBuilder("SSL受付 <ssl@provider.example.jp>")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None
    tls: bool

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class SmtpSink:
    """aiosmtpd handler keeping every accepted message; refuses listed recipients."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)   # address -> "550 ..." reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data if session.authenticated else None
        self.received.append(Received(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
            raw=envelope.original_content or envelope.content,
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            tls=session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None))
        return "250 Message accepted"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    # handled=False on failure: aiosmtpd then answers "535" itself
    return AuthResult(success=ok, handled=ok, auth_data=auth_data if ok else None)


def _start(sink: SmtpSink, **kwargs) -> Controller:
    sink.port = free_port()
    controller = Controller(sink, hostname=sink.host, port=sink.port,
                            ready_timeout=30.0, **kwargs)
    controller.start()
    return controller


@pytest.fixture(scope="module")
def tls_ca(tmp_path_factory):
    """A trustme CA, a loopback server certificate and the CA bundle path."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return server_ctx, str(bundle)


@pytest.fixture
def smtp_server():
    """Plain SMTP on loopback."""
    sink = SmtpSink()
    controller = _start(sink)
    yield sink
    controller.stop()


@pytest.fixture
def smtp_starttls_server(tls_ca):
    """SMTP requiring STARTTLS, with AUTH (PLAIN/LOGIN) after TLS; SMTP_USER/SMTP_PASSWORD."""
    server_ctx, _ = tls_ca
    sink = SmtpSink()
    controller = _start(sink, tls_context=server_ctx, require_starttls=True,
                        authenticator=_authenticator, auth_require_tls=True)
    yield sink
    controller.stop()


@pytest.fixture
def smtp_tls_server(tls_ca):
    """SMTP over implicit TLS (like port 465)."""
    server_ctx, _ = tls_ca
    sink = SmtpSink()
    controller = _start(sink, ssl_context=server_ctx)
    yield sink
    controller.stop()


@dataclass
class WebhookSink:
    """What the loopback webhook received; ``statuses`` are answered in order, then 200.
    A POST without the right HMAC signature is answered 401."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    statuses: list[tuple[int, dict]] = field(default_factory=list)

    def answer(self, request: Request) -> Answer:
        if request.method != "POST":
            return 405, {}, b""
        signed = verify_signature(WEBHOOK_SECRET, request.body,
                                  request.headers.get(SIGNATURE_HEADER))
        self.requests.append({"headers": request.headers, "body": request.body,
                              "signed": signed})
        status, headers = (401, {}) if not signed else (
            self.statuses.pop(0) if self.statuses else (200, {}))
        return status, headers, b""


def _serve_webhook(http_server, tls: ssl.SSLContext | None = None) -> WebhookSink:
    sink = WebhookSink()
    server = http_server({"/hooks/certflow": sink.answer}, tls=tls)
    sink.url = f"{server.base_url}/hooks/certflow?key=abc"
    return sink


@pytest.fixture
def webhook_server(http_server) -> WebhookSink:
    """HTTP endpoint that checks the HMAC signature (401 when wrong) and records requests."""
    return _serve_webhook(http_server)


@pytest.fixture
def webhook_https_server(http_server, tls_ca) -> WebhookSink:
    server_ctx, _ = tls_ca
    return _serve_webhook(http_server, server_ctx)
