"""What the dispatcher and the daemon count as they work: effect outcomes (a counter and a
duration histogram) and the end of each dispatch pass.

These live in certflow's own :data:`REGISTRY`, never prometheus-client's global one, so
an application embedding the engine keeps its registry to itself (it may expose
``REGISTRY`` beside its own). The store-derived gauges are computed at scrape time by
:mod:`workflow.ops.exporter`, which serves both.

The dispatcher reports through one call, :func:`record_outcome`, from the one place an
effect's outcome passes; it also writes the outcome's log
line, so the log and the metrics can never disagree.
"""
from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from workflow import logs

REGISTRY = CollectorRegistry(auto_describe=True)

EFFECTS_TOTAL = Counter("certflow_effects_total", "Effect runs by effect and result "
                        "(done, dropped, later, retry, failed).", ("effect", "result"),
                        registry=REGISTRY)
#: from a file write (ms) to a CA round trip with a reload (tens of seconds)
EFFECT_SECONDS = Histogram("certflow_effect_duration_seconds", "Time one effect run took.",
                           ("effect",), registry=REGISTRY,
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                    30, 60, 120))


class _Progress:
    """Wall-clock times (Prometheus compares them with its own ``time()``) of the last
    dispatch pass that ended and of the last effect that finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.last_pass: float | None = None
        self.last_effect: float | None = None

    def passed(self) -> None:
        with self._lock:
            self.last_pass = time.time()

    def effect_done(self) -> None:
        with self._lock:
            self.last_effect = time.time()

    def latest(self) -> float | None:
        """When the daemon last showed it works: a pass ended or an effect finished (a
        long drain ends no pass for minutes, but finishes effects)."""
        with self._lock:
            known = [t for t in (self.last_pass, self.last_effect) if t is not None]
        return max(known) if known else None


PROGRESS = _Progress()


def record_outcome(row: dict, result: str, seconds: float) -> None:
    """One outbox ``row`` ran to ``result`` in ``seconds``: its log line and its counts."""
    effect = row["effect"]
    logs.effect_outcome(row["order_id"], effect, row["attempts"] + 1, result, seconds)
    EFFECTS_TOTAL.labels(effect, result).inc()
    EFFECT_SECONDS.labels(effect).observe(seconds)
    PROGRESS.effect_done()



def pass_done() -> None:
    """A dispatch pass ended (``certflow_daemon_last_pass_timestamp_seconds``)."""
    PROGRESS.passed()
