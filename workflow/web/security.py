"""What keeps the web pages safe: signed session cookies, CSRF tokens, login throttling,
safe redirects and the security headers on every response.

The signing secret is derived from the master key (HKDF, purpose "web session"): a new
master key logs everyone out, and nothing secret is kept in a file of its own.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

SESSION_COOKIE = "certflow_session"
SESSION_LIFETIME = timedelta(hours=12)
#: consecutive failures per operator name or client address before logins wait
FREE_FAILURES = 5
FIRST_WAIT, MAX_WAIT = timedelta(seconds=60), timedelta(minutes=15)

HEADERS = (
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    nonce: str                    # per browser; the CSRF token is derived from it
    operator: str | None          # None until logged in
    expires: datetime


class Signer:
    """Session cookies and CSRF tokens, all MACs under one derived secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, text: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}|{text}".encode(), hashlib.sha256).digest())

    def new_session(self, operator: str | None, now: datetime) -> Session:
        return Session(secrets.token_urlsafe(16), operator, now + SESSION_LIFETIME)

    def dump(self, session: Session) -> str:
        body = _b64(json.dumps({"n": session.nonce, "op": session.operator,
                                "exp": int(session.expires.timestamp())}).encode())
        return f"{body}.{self._mac('session', body)}"

    def load(self, cookie: str | None, now: datetime) -> Session | None:
        """The session in a cookie, or None when absent, forged or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            data = json.loads(_unb64(body))
            expires = datetime.fromtimestamp(int(data["exp"]), now.tzinfo)
            session = Session(str(data["n"]), data["op"], expires)
        except (ValueError, KeyError, TypeError):
            return None
        return session if now < session.expires else None

    def csrf(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def approval_csrf(self, token: str) -> str:
        """The approval form's CSRF token: bound to the approval token (no cookie needed)."""
        return self._mac("approve", token)

    @staticmethod
    def same(given: str | None, expected: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


class Throttle:
    """Consecutive login failures per key (operator name, client address): after
    ``FREE_FAILURES`` the next try waits 60 s, doubling up to 15 min. In memory: one
    `certflow serve` process is one console."""

    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, datetime]] = {}
        self._lock = threading.Lock()

    def wait(self, keys: list[str], now: datetime) -> int:
        """Seconds until a login for these keys may be tried again (0: now)."""
        with self._lock:
            waits = [(until - now).total_seconds() for count, until in
                     (self._failures.get(k, (0, now)) for k in keys) if until > now]
        return math.ceil(max(waits, default=0))

    def failed(self, keys: list[str], now: datetime) -> None:
        with self._lock:
            for key in keys:
                count = self._failures.get(key, (0, now))[0] + 1
                wait = timedelta(0) if count < FREE_FAILURES else \
                    min(FIRST_WAIT * 2 ** (count - FREE_FAILURES), MAX_WAIT)
                self._failures[key] = (count, now + wait)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def safe_next(target: str | None, default: str = "/ops/") -> str:
    """A redirect target after login: a path of the console only, never another site."""
    if not target or not target.startswith("/ops/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 0x21 for c in target):
        return default
    return target


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (k, v) for k, v in HEADERS if k not in names]
            await send(message)
        await self.app(scope, receive, with_headers)
