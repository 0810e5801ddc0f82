"""Notifier that hands messages to an SMTP server (plain, STARTTLS or implicit TLS).

smtplib and socket errors are mapped at this edge: a server that cannot be reached,
times out or answers 4xx is a :class:`TransientError` (the outbox retries); a 5xx
answer, a refused login or an untrusted TLS certificate is a :class:`PermanentError`.
Messages name ``smtp host:port``; the password never appears in them.
"""
from __future__ import annotations

import base64
import re
import contextlib
import smtplib
import socket
import ssl
from pathlib import Path
from typing import Iterator

from adapters.abilities import Health
from adapters.base import AdapterError, BadInput, Notice, PermanentError, TransientError
from adapters.notify import DELIVERY_CA_BUNDLE, DELIVERY_TIMEOUT
from adapters.notify.messages import MessageBuilder, builder_from
from adapters.settings import AdapterKind, Setting


class SmtpNotifier:
    """Sends each notice as one SMTP transaction.

    ``starttls``: upgrade a plain connection (port 587 usually); ``tls``: implicit TLS
    (port 465). ``ca_bundle``: PEM file of CAs to trust instead of the system store.
    ``username``/``password``: AUTH after TLS when given. ``helo_name`` defaults to
    the sender's domain (no reverse-DNS lookup of our own host).
    """

    def __init__(self, host: str, port: int, builder: MessageBuilder, starttls: bool = False,
                 tls: bool = False, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0,
                 ca_bundle: str | None = None, helo_name: str | None = None) -> None:
        if not host or any(ch in host for ch in " /\r\n"):
            raise BadInput("notify.host", f"invalid SMTP host: {host!r}")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise BadInput("notify.port", f"invalid SMTP port: {port!r}")
        if starttls and tls:
            raise BadInput("notify.tls", "choose either starttls or tls (implicit), not both")
        if username and password is None:
            raise BadInput("notify.password", "a username needs a password")
        if ca_bundle is not None and not Path(ca_bundle).is_file():
            raise BadInput("notify.ca_bundle", f"CA bundle not found: {ca_bundle}")
        self.host = host
        self.port = port
        self.builder = builder
        self.starttls = starttls
        self.tls = tls
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self.helo_name = helo_name or builder.domain

    def __repr__(self) -> str:
        return (f"SmtpNotifier(host={self.host!r}, port={self.port}, "
                f"starttls={self.starttls}, tls={self.tls}, username={self.username!r})")

    @property
    def where(self) -> str:
        return f"smtp {self.host}:{self.port}"

    def send(self, notice: Notice) -> None:
        """Deliver the notice; a retry reuses the same Message-ID."""
        msg = self.builder.build(notice)
        with self.edge():
            smtp = self._connect()
            try:
                smtp.send_message(msg)
            finally:
                _quit(smtp)

    def check(self) -> Health:
        """For ``certflow doctor``: connect, EHLO (+ TLS, login), NOOP, QUIT."""
        with self.edge():
            smtp = self._connect()
            try:
                code, reply = smtp.noop()
                if code >= 400:
                    raise smtplib.SMTPResponseException(code, reply)
            finally:
                _quit(smtp)
        return Health(f"{self.where} answers (EHLO, NOOP)")

    # --- connection -----------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise BadInput("notify.ca_bundle",
                           f"cannot load CA bundle {self.ca_bundle}") from exc

    def _connect(self) -> smtplib.SMTP:
        if self.tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=self.helo_name,
                timeout=self.timeout, context=self._ssl_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.helo_name,
                                timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self._ssl_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    # --- error mapping --------------------------------------------------------------

    @contextlib.contextmanager
    def edge(self) -> Iterator[None]:
        """The adapter's edge: smtplib, ssl and socket exceptions become adapters.base errors."""
        try:
            yield
        except (smtplib.SMTPException, OSError) as exc:
            raise self._mapped(exc) from exc

    def _mapped(self, exc: BaseException) -> AdapterError:
        where = self.where
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            answers = exc.recipients.values()
            detail = "; ".join(f"{rcpt}: {code} {self._text(msg)}"
                               for rcpt, (code, msg) in exc.recipients.items())
            transient = any(400 <= code < 500 for code, _ in answers)
            cls = TransientError if transient else PermanentError
            return cls(f"{where}: recipients refused ({detail})", host=self.host,
                       port=self.port, value=tuple(exc.recipients))
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return PermanentError(
                f"{where}: login refused for {self.username!r} ({exc.smtp_code} "
                f"{self._text(exc.smtp_error)})", host=self.host, port=self.port,
                code=exc.smtp_code)
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            text = f"{where}: {code} {self._text(exc.smtp_error)}"
            if 500 <= code < 600:
                return PermanentError(text, host=self.host, port=self.port, code=code)
            return TransientError(text, host=self.host, port=self.port, code=code)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return TransientError(f"{where}: server disconnected ({self._text(str(exc))})",
                                  host=self.host, port=self.port)
        if isinstance(exc, smtplib.SMTPException):
            # no reply code: STARTTLS/AUTH not offered, no usable AUTH mechanism
            return PermanentError(f"{where}: {self._text(str(exc))}",
                                  host=self.host, port=self.port)
        if isinstance(exc, ssl.SSLCertVerificationError):
            # verify_message is set only on errors the ssl module raised itself
            detail = (str(exc).split("certificate verify failed: ")[1:] or [""])[0].split(" (")[0]
            return PermanentError(f"{where}: TLS certificate not trusted"
                                  + (f" ({detail})" if detail else ""), host=self.host,
                                  port=self.port)
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return TransientError(f"{where}: TLS connection closed",
                                  host=self.host, port=self.port)
        if isinstance(exc, ssl.SSLError):
            # exc.reason is set only on errors the ssl module raised itself
            found = re.search(r"\[SSL: ([A-Z0-9_]+)\]", str(exc))
            reason = found.group(1) if found else exc.__class__.__name__
            hint = (" - does this port speak STARTTLS rather than implicit TLS?"
                    if reason == "WRONG_VERSION_NUMBER" else "")
            return PermanentError(f"{where}: TLS failed ({reason}){hint}",
                                  host=self.host, port=self.port)
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return TransientError(f"{where}: timed out after {self.timeout:g}s",
                                  host=self.host, port=self.port)
        if isinstance(exc, ConnectionRefusedError):
            return TransientError(f"{where}: connection refused",
                                  host=self.host, port=self.port)
        if isinstance(exc, socket.gaierror):
            return TransientError(f"{where}: cannot resolve host",
                                  host=self.host, port=self.port)
        return TransientError(f"{where}: {exc.strerror or exc}"
                              if isinstance(exc, OSError) else f"{where}: {exc}",
                              host=self.host, port=self.port)

    def _text(self, raw: bytes | str | None) -> str:
        """One short line of server text with any form of the password removed."""
        if raw is None:
            return ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        text = " ".join(text.split())[:200]
        for secret in self._secret_forms():
            text = text.replace(secret, "***")
        return text

    def _secret_forms(self) -> list[str]:
        if not self._password:
            return []
        user = self.username or ""
        forms = [self._password]
        for raw in (self._password, f"\0{user}\0{self._password}"):
            forms.append(base64.b64encode(raw.encode("utf-8")).decode("ascii"))
        return forms


def _quit(smtp: smtplib.SMTP) -> None:
    """QUIT politely; the message is already accepted, so a failure here is harmless."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _build(s: dict, wiring) -> SmtpNotifier:
    return SmtpNotifier(s["host"], s["port"], builder_from(s, wiring.now), starttls=s["starttls"],
                        tls=s["tls"], username=s["username"], password=s["password"],
                        timeout=s["timeout"], ca_bundle=s["ca_bundle"])


KIND = AdapterKind("notify", "smtp", "mail through an SMTP server", (
    Setting("host", "string", "127.0.0.1", "Server host."),
    Setting("port", "integer", 25, "Server port (25, 587 with `starttls`, 465 with `tls`).",
            minimum=1, maximum=65535),
    Setting("starttls", "boolean", False, "Upgrade the connection with STARTTLS."),
    Setting("tls", "boolean", False, "Implicit TLS from the first byte."),
    Setting("username", "string", None, "AUTH user (needs `password`)."),
    Setting("password", "string", None, "AUTH password (secret; never logged or shown in errors).",
            secret=True),
    DELIVERY_TIMEOUT, DELIVERY_CA_BUNDLE,
), _build)
