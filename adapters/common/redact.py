"""Credentials never leave certflow in text: the one helper that hides them in URLs."""
from __future__ import annotations

from urllib.parse import urlsplit


def redact_url(url: str | None) -> str:
    """``scheme://host:port/path`` of ``url``: no ``user:password@``, no query (it may hold
    an API key), no fragment. ``https://u:pw@h/x?k=1`` → ``https://h/x``."""
    try:
        parts = urlsplit(url or "")
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}"
