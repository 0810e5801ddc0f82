"""Leases kept alive while their effects run.

A claimed row is leased for ``[effects] lease_seconds``; an effect may run longer (a
6-second reload, an SMTP server that stalls). While a row is held here, a background
thread extends its lease every third of the lease time, so no other daemon takes the
row over while its effect is still running; a worker that dies stops renewing and its
rows lapse as before (or are taken over at once on this host, see the dispatcher).
"""
from __future__ import annotations

import contextlib
import logging
import threading
from datetime import timedelta
from typing import Iterator

from workflow.clock import iso
from workflow.errors import StoreUnavailable

log = logging.getLogger("certflow.effects")


class LeaseKeeper:
    """Renews the leases of the rows being run by one lease owner."""

    def __init__(self, engine, owner: str, lease: timedelta) -> None:
        self.engine = engine
        self.owner = owner
        self.lease = lease
        self.every = max(lease.total_seconds() / 3, 0.05)
        self._held: dict[int, int] = {}     # row id -> how many holders (re-entrant)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0                   # rows renewed so far (tests, metrics)

    @contextlib.contextmanager
    def holding(self, row_id: int) -> Iterator[None]:
        """Keep ``row_id``'s lease alive for the duration of the block."""
        with self._lock:
            self._held[row_id] = self._held.get(row_id, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="certflow-leases",
                                                daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held[row_id] -= 1
                if not self._held[row_id]:
                    del self._held[row_id]

    def held(self) -> list[int]:
        with self._lock:
            return list(self._held)

    def renew(self) -> int:
        """Extend every held lease now; how many this owner still held."""
        ids = self.held()
        if not ids:
            return 0
        until = iso(self.engine.now() + self.lease)
        with self.engine.store.transaction() as tx:
            kept = tx.renew_leases(ids, self.owner, until)
        self.renewals += kept
        return kept

    def stop(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._wake.wait(self.every):
            try:
                self.renew()
            except StoreUnavailable as exc:  # tried again next round, well inside the lease
                log.warning("lease renewal: %s", exc.message)
            except Exception:  # never let the keeper die silently: the next round retries
                log.exception("lease renewal failed")
