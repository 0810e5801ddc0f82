"""UTC datetimes as text: the one home of the conversions adapters and the engine share.

Text is fixed width and ends in ``Z`` so that text order is time order (SQL compares it).
A naive datetime is taken to be UTC.
"""
from __future__ import annotations

from datetime import datetime, timezone

UTC = timezone.utc
_FORMATS = {"seconds": "%Y-%m-%dT%H:%M:%SZ", "microseconds": "%Y-%m-%dT%H:%M:%S.%fZ"}


def as_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def to_text(when: datetime | None, precision: str = "microseconds") -> str | None:
    if when is None:
        return None
    return as_utc(when).strftime(_FORMATS[precision])


def from_text(text: str | None) -> datetime | None:
    """Either precision of :func:`to_text` (and any ISO 8601 text with an offset)."""
    if not text:
        return None
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
