"""The injected clock. The engine never reads the time any other way.

Times are aware UTC datetimes truncated to whole seconds, and stored as
``YYYY-MM-DDTHH:MM:SSZ`` so that text comparison in SQL is time comparison.
"""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol

from adapters.common.utc import from_text, to_text

UTC = timezone.utc


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall time (works under faketime, which moves the process's clock)."""

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


class MovableClock:
    """A clock the demo and tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC).replace(microsecond=0)


def iso(when: datetime | None) -> str | None:
    return to_text(when, "seconds")


def parse_iso(text: str | None) -> datetime | None:
    return from_text(text)
