"""Loopback servers for notifier tests: an aiosmtpd sink and a signature-checking webhook.

Import the fixtures into a test module: ``from fixtures_notify import *``.
"""
from __future__ import annotations

import email
import email.policy
import http.server
import ssl
import threading
from dataclasses import dataclass, field

import pytest

from support.helpers import free_port
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from adapters.notify.webhook import SIGNATURE_HEADER, verify_signature

__all__ = [
    "Received", "SmtpSink", "WebhookSink", "free_port", "tls_ca", "smtp_server",
    "smtp_starttls_server", "smtp_tls_server", "webhook_server", "webhook_https_server",
    "SMTP_USER", "SMTP_PASSWORD", "WEBHOOK_SECRET",
]

SMTP_USER = "certflow"
SMTP_PASSWORD = "s3cret-Pa55word"
WEBHOOK_SECRET = "webhook-shared-secret"


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
    """What the loopback webhook received; ``statuses`` are answered in order, then 200."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    statuses: list[tuple[int, dict]] = field(default_factory=list)


def _handler_for(sink: WebhookSink):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signed = verify_signature(WEBHOOK_SECRET, body, self.headers.get(SIGNATURE_HEADER))
            sink.requests.append({"headers": dict(self.headers), "body": body,
                                  "signed": signed})
            status, headers = (401, {}) if not signed else (
                sink.statuses.pop(0) if sink.statuses else (200, {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self):
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):   # keep test output quiet
            pass

    return Handler


def _serve_webhook(server_ctx: ssl.SSLContext | None = None):
    sink = WebhookSink()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(sink))
    scheme = "http"
    if server_ctx is not None:
        server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    sink.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/hooks/certflow?key=abc"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return sink, server, thread


@pytest.fixture
def webhook_server():
    """HTTP endpoint that checks the HMAC signature (401 when wrong) and records requests."""
    sink, server, thread = _serve_webhook()
    yield sink
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)


@pytest.fixture
def webhook_https_server(tls_ca):
    server_ctx, _ = tls_ca
    sink, server, thread = _serve_webhook(server_ctx)
    yield sink
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)
