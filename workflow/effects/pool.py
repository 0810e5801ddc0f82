"""The daemon's workers: ``[effects] workers`` threads running effects at once.

One feeder thread claims due rows (in dispatch order, each kind within its
``[effects.limits]``, never more than there are idle workers, see
:mod:`workflow.effects.priority`) and hands them to the workers. Each worker runs its
rows through a :class:`~workflow.effects.dispatcher.Dispatcher` over its own Engine
(its own store connection, the shared adapters), so adapter I/O overlaps while every
command keeps its one short transaction. All workers share one lease owner and one
:class:`~workflow.effects.leases.LeaseKeeper`.

The feeder wakes on a commit (this process's, or another's through the daemon's
watcher), when a worker finishes (room for the next row), when the next postponed
row falls due, and every ``[daemon] dispatch_seconds`` otherwise.

:meth:`WorkerPool.stop` (SIGTERM): claim nothing more, let running effects finish,
hand back every row claimed but not started and every lease still held.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import Counter

from workflow.clock import parse_iso
from workflow.effects import metrics, priority
from workflow.effects.dispatcher import Dispatcher
from workflow.errors import StoreUnavailable

log = logging.getLogger("certflow.effects")

#: the feeder never sleeps less than this between looks (a row due "now" again and again)
MIN_WAIT_SECONDS = 0.01


class WorkerPool:
    def __init__(self, engine, owner: str | None = None, handlers=None) -> None:
        cfg = engine.config["effects"]
        self.engine = engine
        self.size = cfg["workers"]
        self.limits = priority.limits_of(cfg)
        self.poll_seconds = engine.config["daemon"]["dispatch_seconds"]
        self._handlers = handlers
        # the claimer's connection writes only leases (claims, renewals, hand-backs)
        self.claimer = Dispatcher(engine.sibling(synchronous="normal"), handlers, owner)
        self.owner = self.claimer.owner
        self.leases = self.claimer.leases
        self._rows: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._claimed: Counter = Counter()   # kind -> rows claimed and not yet ended
        self._mine: set[int] = set()         # their ids
        self._wanted = True                  # something happened since the last claim
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._engines = [self.claimer.engine]

    # --- life ---------------------------------------------------------------------

    def start(self) -> "WorkerPool":
        for i in range(self.size):
            engine = self.engine.sibling()
            engine.on_commit(self.wake)
            self._engines.append(engine)
            worker = Dispatcher(engine, self._handlers, self.owner, self.leases)
            self._spawn(self._work, (worker,), f"certflow-worker-{i + 1}")
        self._feeder = self._spawn(self._feed, (), "certflow-feeder")
        return self

    def _spawn(self, target, args, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def wake(self) -> None:
        """Look for due work now (a commit happened, or a worker became free)."""
        with self._cond:
            self._wanted = True
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop claiming, let running effects finish, hand back what is left."""
        self._stopping.set()
        self.claimer.stopping = True
        self.wake()
        self._feeder.join()
        workers = [t for t in self._threads if t is not self._feeder]
        for _ in workers:
            self._rows.put(None)  # after every claimed row: those are handed back first
        for thread in workers:
            thread.join()
        self.leases.stop()
        try:
            with self.claimer.engine.store.transaction() as tx:
                handed = tx.release_all(self.owner)
            if handed:
                log.info("handed back %d claimed effect(s)", handed)
        except StoreUnavailable as exc:  # they lapse after lease_seconds instead
            log.warning("could not hand back claimed effects: %s", exc.message)
        for engine in self._engines:
            engine.close()

    # --- the feeder ---------------------------------------------------------------

    def _feed(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            timeout = backoff or self._until_next_due()
            with self._cond:
                if not self._wanted or self._free() == 0:
                    self._cond.wait(timeout)
                if self._stopping.is_set():
                    return
                self._wanted = False
                free, running, mine = self._free(), dict(self._claimed), set(self._mine)
            if free == 0:
                continue
            try:
                # never a row this pool still runs, even if its lease lapsed meanwhile
                rows = self.claimer.claim(limit=free, exclude=mine, limits=self.limits,
                                          running=running)
                backoff = 0.0
                metrics.pass_done()  # the feeder looked at the queue: /healthz sees it alive
            except StoreUnavailable as exc:
                backoff = min(max(backoff * 2, 1.0), 60.0)
                log.warning("%s; claiming paused %.0f s", exc.message, backoff)
                continue
            with self._cond:
                self._claimed.update(row["effect"] for row in rows)
                self._mine.update(row["id"] for row in rows)
            for row in rows:
                self._rows.put(row)

    def _free(self) -> int:
        return self.size - sum(self._claimed.values())

    def _until_next_due(self) -> float:
        """Seconds until the next postponed row is due, at most ``dispatch_seconds``. A row
        due already waits for a worker to finish (it is held back by its kind's limit)."""
        try:
            stamp = self.claimer.engine.store.next_effect_at()
        except StoreUnavailable:
            return self.poll_seconds
        if stamp is None:
            return self.poll_seconds
        ahead = (parse_iso(stamp) - self.engine.now()).total_seconds()
        if ahead <= 0:
            return self.poll_seconds
        return max(MIN_WAIT_SECONDS, min(ahead, self.poll_seconds))

    # --- the workers --------------------------------------------------------------

    def _work(self, dispatcher: Dispatcher) -> None:
        while True:
            row = self._rows.get()
            if row is None:
                return
            try:
                if self._stopping.is_set():
                    dispatcher.release(row)
                else:
                    dispatcher.run(row)
            except StoreUnavailable as exc:  # the row keeps its lease until it lapses
                log.warning("effect %s of order %s: %s", row["effect"], row["order_id"],
                            exc.message)
            except Exception:
                log.exception("effect %s of order %s: worker error", row["effect"],
                              row["order_id"])
            finally:
                with self._cond:
                    self._claimed[row["effect"]] -= 1
                    self._mine.discard(row["id"])
                    self._wanted = True
                    self._cond.notify_all()
