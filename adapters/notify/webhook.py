"""Notifier that POSTs each message as JSON to a ticket system's webhook.

The body is signed: ``X-Certflow-Signature: sha256=<hex HMAC-SHA256(secret, body)>``,
and carries ``Idempotency-Key`` so the receiver can drop a retried delivery.
JSON fields: template, to, subject, body, language, idempotency_key, order_id,
message_id, attachments ``[{filename, content}]`` (PEM text).

Mapping at this edge: timeouts, connection errors, 408/425/429 and 5xx are
:class:`TransientError` (``retry_after`` from ``Retry-After``); other 4xx and
redirects are :class:`PermanentError` naming the status. Messages show the URL
without its query string or credentials, never the secret.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import ssl
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import httpx

from adapters.abilities import Health
from adapters.common.redact import redact_url as _safe_url
from adapters.common.retry_after import retry_after_seconds
from adapters.base import BadInput, Notice, PermanentError, TransientError
from adapters.notify import DELIVERY_CA_BUNDLE, DELIVERY_TIMEOUT
from adapters.notify.messages import MessageBuilder, builder_from
from adapters.settings import AdapterKind, Setting

SIGNATURE_HEADER = "X-Certflow-Signature"
#: statuses worth retrying besides 5xx
_RETRYABLE = frozenset({408, 425, 429})


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: does ``header`` carry the HMAC of the raw ``body``? (constant time)"""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"),
                               header.strip().lower().encode("ascii", "replace"))


class WebhookNotifier:
    """POSTs notices to ``url``, signed with ``secret``.

    ``ca_bundle``: PEM file of CAs to trust for an https URL instead of the system store.
    """

    def __init__(self, url: str, secret: str, builder: MessageBuilder,
                 timeout: float = 10.0, ca_bundle: str | None = None) -> None:
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput("notify.url", f"webhook URL must be http(s)://host/...: "
                                         f"{_safe_url(url)!r}")
        if not secret:
            raise BadInput("notify.secret", "webhook secret is empty")
        if ca_bundle is not None and not Path(ca_bundle).is_file():
            raise BadInput("notify.ca_bundle", f"CA bundle not found: {ca_bundle}")
        self.url = url
        self._secret = secret
        self.builder = builder
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self.where = f"webhook {_safe_url(url)}"

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={_safe_url(self.url)!r})"

    def payload(self, notice: Notice) -> bytes:
        """The exact bytes that are POSTed (and signed)."""
        msg = self.builder.build(notice)      # validates addresses, refuses key material
        subject, body = self.builder.render(notice)
        attachments = []
        for attachment in notice.attachments:
            try:
                content = attachment.content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PermanentError(f"attachment {attachment.filename} is not text",
                                     filename=attachment.filename) from exc
            attachments.append({"filename": Path(attachment.filename).name,
                                "content": content})
        document = {
            "template": notice.template,
            "to": str(msg["To"]),
            "subject": subject,
            "body": body,
            "language": self.builder.language(notice),
            "idempotency_key": notice.idempotency_key,
            "order_id": notice.context.get("order_id"),
            "message_id": str(msg["Message-ID"]),
            "attachments": attachments,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode("utf-8")

    def send(self, notice: Notice) -> None:
        """POST the notice once; the receiver deduplicates on ``Idempotency-Key``."""
        body = self.payload(notice)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(self._secret, body),
            "Idempotency-Key": _header_safe(notice.idempotency_key),
            "User-Agent": "certflow-webhook",
        }
        response = self._request("POST", content=body, headers=headers)
        self._raise_for(response)

    def check(self) -> Health:
        """For ``certflow doctor``: the endpoint answers (any status below 500)."""
        response = self._request("HEAD")
        if response.status_code >= 500:
            raise TransientError(f"{self.where}: HTTP {response.status_code}",
                                 status=response.status_code)
        return Health(f"{self.where} answers")

    def _verify(self) -> ssl.SSLContext | bool:
        if self.ca_bundle is None:
            return True
        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise BadInput("notify.ca_bundle",
                           f"cannot load CA bundle {self.ca_bundle}") from exc

    def _request(self, method: str, **kwargs: object) -> httpx.Response:
        # trust_env=False: proxies from the environment must not see our deliveries
        with self.edge():
            with httpx.Client(timeout=self.timeout, verify=self._verify(),
                              trust_env=False, follow_redirects=False) as client:
                return client.request(method, self.url, **kwargs)

    @contextlib.contextmanager
    def edge(self) -> Iterator[None]:
        """The adapter's edge: every httpx (and socket) exception becomes an adapters.base error."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.where}: timed out after {self.timeout:g}s") from exc
        except httpx.TransportError as exc:
            if _caused_by(exc, ssl.SSLCertVerificationError):
                raise PermanentError(f"{self.where}: TLS certificate not trusted") from exc
            if isinstance(exc, httpx.UnsupportedProtocol):
                raise PermanentError(f"{self.where}: unsupported URL") from exc
            raise TransientError(f"{self.where}: {_first_line(exc)}") from exc
        except httpx.InvalidURL as exc:
            raise PermanentError(f"{self.where}: invalid URL") from exc
        except httpx.HTTPError as exc:  # decoding, redirects, status: the answer was unusable
            raise TransientError(f"{self.where}: {_first_line(exc)}") from exc
        except httpx.StreamError as exc:  # a bug of ours, reported as one that retrying won't fix
            raise PermanentError(f"{self.where}: {type(exc).__name__}") from exc
        except OSError as exc:
            raise TransientError(f"{self.where}: {exc.strerror or exc}") from exc

    def _raise_for(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        text = f"{self.where}: HTTP {status} {response.reason_phrase}".rstrip()
        if status >= 500 or status in _RETRYABLE:
            raise TransientError(text, retry_after=_retry_after(response), status=status)
        if 300 <= status < 400:
            raise PermanentError(f"{text} (redirects are not followed)", status=status)
        raise PermanentError(text, status=status)


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"), datetime.now(timezone.utc))


def _header_safe(value: str) -> str:
    return value if value.isascii() and value.isprintable() else \
        hashlib.sha256(value.encode("utf-8")).hexdigest()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, kind):
            return True
        visited.add(id(seen))
        seen = seen.__cause__ or seen.__context__
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__



def _build(s: dict, wiring) -> WebhookNotifier:
    return WebhookNotifier(s["url"], s["secret"], builder_from(s, wiring.now),
                           timeout=s["timeout"], ca_bundle=s["ca_bundle"])


KIND = AdapterKind("notify", "webhook", "HMAC-signed JSON POSTs", (
    Setting("url", "string", None, "http(s) URL the messages are POSTed to.", syntax="url",
            required=True),
    Setting("secret", "string", None, "HMAC-SHA256 key for the `X-Certflow-Signature` header.",
            secret=True, required=True),
    DELIVERY_TIMEOUT, DELIVERY_CA_BUNDLE,
), _build)
