"""HTTP ``Retry-After`` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date."""
from __future__ import annotations

import email.utils
from datetime import datetime, timezone


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait, or None when the header is absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())
