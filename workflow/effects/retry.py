"""The retry schedule of failed effects (``[effects]`` of config.toml), as a value.

Attempt n waits ``backoff_seconds * 2**(n-1)``, plus up to 25 % jitter so a fleet of
failed orders does not retry in step, at least the adapter's ``retry_after`` when it
gave one, capped at six hours. Past ``max_attempts`` the effect has failed.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Mapping


@dataclass(frozen=True)
class RetrySchedule:
    max_attempts: int
    backoff_seconds: float
    cap: timedelta = timedelta(hours=6)
    jitter: float = 0.25

    @classmethod
    def from_config(cls, effects: Mapping) -> "RetrySchedule":
        return cls(effects["max_attempts"], effects["backoff_seconds"])

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay(self, attempts: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> timedelta:
        """How long to wait after the ``attempts``-th failed try."""
        delay = timedelta(seconds=self.backoff_seconds * 2 ** (attempts - 1)
                          * (1 + rand() * self.jitter))
        if retry_after:
            delay = max(delay, timedelta(seconds=float(retry_after)))
        return min(delay, self.cap)
