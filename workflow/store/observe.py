"""The reads behind the daemon's metrics, each one bounded and served by an index, so a
scrape stays cheap at a million orders (``bench/metrics.py --orders 1000000``: about 0.2 s
of CPU for a whole scrape, most of it the per-state count's walk of ``idx_orders_state``
and the certificates' walk of ``idx_certificates_not_after``).

A mixin of the SQLite store (it needs ``reading()``); another backend implements the same
few methods.
"""
from __future__ import annotations

from typing import Protocol


class ObservationReads:
    """Aggregates and the soonest-expiring live certificates, for the metrics collector."""

    def state_counts(self) -> dict[str, int]:
        """Orders per state (a walk of the state index, no table rows read)."""
        with self.reading() as conn:
            return dict(conn.execute("SELECT state, count(*) FROM orders GROUP BY state")
                        .fetchall())

    def pending_effect_counts(self) -> dict[str, int]:
        """Pending outbox rows per effect (the pending part of the status index)."""
        with self.reading() as conn:
            return dict(conn.execute("SELECT effect, count(*) FROM outbox WHERE status = "
                                     "'pending' GROUP BY effect").fetchall())

    def oldest_due(self, stamp: str) -> str | None:
        """``next_at`` of the longest-waiting pending row due at ``stamp`` (one index probe)."""
        with self.reading() as conn:
            return conn.execute("SELECT min(next_at) FROM outbox WHERE status = 'pending' "
                                "AND next_at <= ?", (stamp,)).fetchone()[0]

    def live_certificates(self, live_states: tuple[str, ...], limit: int,
                          expiring_from: str) -> list[dict]:
        """The ``limit`` soonest-expiring certificates (``not_after >= expiring_from``) of
        orders in ``live_states`` that no renewal in ``live_states`` replaced, and not
        imported as history; each with the state of its renewal order (None without one).

        Walks the ``not_after`` index from ``expiring_from`` and stops after ``limit``
        rows: the cost is ``limit`` plus the replaced certificates met on the way (those of
        recent renewals), never the whole history (``CROSS JOIN`` keeps SQLite from
        starting at the state index and sorting every live certificate; json_extract is
        SQLite's, as in ``renewal_candidates``)."""
        marks = ", ".join("?" * len(live_states))
        with self.reading() as conn:
            return [dict(r) for r in conn.execute(
                "SELECT o.id, o.common_name, o.contract, c.not_before, c.not_after, "
                "r.state AS renewal_state FROM certificates c CROSS JOIN orders o "
                "LEFT JOIN orders r ON r.renewal_of = o.id "
                f"WHERE c.not_after >= ? AND o.id = c.order_id AND o.state IN ({marks}) "
                "AND json_extract(o.data, '$.imported') IS NULL "
                f"AND (r.state IS NULL OR r.state NOT IN ({marks})) "
                "ORDER BY c.not_after LIMIT ?",
                (expiring_from, *live_states, *live_states, limit))]


class ObservationStore(Protocol):
    def state_counts(self) -> dict[str, int]: ...
    def pending_effect_counts(self) -> dict[str, int]: ...
    def oldest_due(self, stamp: str) -> str | None: ...
    def live_certificates(self, live_states: tuple[str, ...], limit: int,
                          expiring_from: str) -> list[dict]: ...
    def schema_version(self) -> int: ...
