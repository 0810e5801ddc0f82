"""``certflow daemon``: APScheduler 3.x jobs, all driven by the database.

Jobs: dispatch due effects (every ``[daemon] dispatch_seconds``, and at once after a
commit), fire due deadlines (every ``deadline_seconds``: the 10-day approval expiry and
the reminders before it fire to the minute), open due renewals. Every job rebuilds its
view from the database, so a restart loses nothing; ``misfire_grace_time=None`` and
``coalesce=True`` make a missed run happen late rather than never, once.

"At once after a commit" covers commits of other processes too (the provisioning
backend paying an order through the library): a watcher thread reads SQLite's
``PRAGMA data_version``, which changes whenever another connection commits, a few
times a second, and wakes the dispatcher.

A busy, full or read-only store (StoreUnavailable) does not stop the daemon: the job
logs one line and the jobs pause, doubling up to a minute, until the store works again.

SIGTERM/SIGINT finish the current effect (claimed-but-unstarted rows are released for
the next worker) and exit 0.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timezone

from workflow.effects import deadlines
from workflow.effects import renewal
from workflow.effects.dispatcher import Dispatcher
from workflow.errors import StoreUnavailable

log = logging.getLogger("certflow.daemon")

#: how often the watcher looks for commits made by other processes (seconds)
WATCH_SECONDS = 0.05


class Daemon:
    """The scheduled jobs over one engine. ``run_once`` for cron and tests,
    ``run_forever`` for the long-running service."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.dispatcher = Dispatcher(engine)
        self._lock = threading.Lock()       # one job at a time on the engine's connection
        self._wake_lock = threading.Lock()
        self._wanted = False                # a commit happened since dispatch last looked
        self._dispatching = False
        self._stop = threading.Event()
        self._backoff = 0.0                 # seconds the jobs pause after StoreUnavailable
        self._paused_until = 0.0
        self._swept = False

    def sweep_leftovers(self) -> None:
        """Once per daemon: remove the temporary files a killed predecessor left behind."""
        if not self._swept:
            self._swept = True
            for path in self.engine.adapters.sweep_leftovers():
                log.info("removed %s, left by a process killed mid-install", path)

    # one pass of each job ---------------------------------------------------------

    def dispatch(self) -> int:
        with self._lock:
            return self.dispatcher.drain()

    def deadlines(self) -> int:
        with self._lock:
            return deadlines.sweep(self.engine)

    def renewals(self) -> int:
        with self._lock:
            return len(renewal.open_renewals(self.engine))

    def run_once(self, max_passes: int = 50) -> dict:
        """Drain all work due now: deadlines, effects, renewals, until nothing moves."""
        self.sweep_leftovers()
        totals = {"deadlines": 0, "effects": 0, "renewals": 0}
        for _ in range(max_passes):
            moved = {"deadlines": self.deadlines(), "effects": self.dispatch(),
                     "renewals": self.renewals()}
            for k, v in moved.items():
                totals[k] += v
            if not any(moved.values()) or self.dispatcher.stopping:
                break
        return totals

    # the long-running scheduler ---------------------------------------------------

    def _dispatch_job(self) -> None:
        """Drain, and drain again while commits keep arriving during the drain."""
        with self._wake_lock:
            self._dispatching = True
            self._wanted = False
        try:
            while not self._stop.is_set():
                self.dispatch()
                with self._wake_lock:
                    if not self._wanted:
                        self._dispatching = False
                        return
                    self._wanted = False
        finally:
            with self._wake_lock:
                self._dispatching = False

    def _wake(self, scheduler) -> None:
        """A commit happened: make the dispatcher look now (or once more if it is busy)."""
        with self._wake_lock:
            self._wanted = True
            if self._dispatching or self.dispatcher.stopping:
                # stopping: shutdown() holds the scheduler's job store lock while it waits
                # for this very job, so modify_job would wait for ever
                return
        try:
            scheduler.modify_job("dispatch", next_run_time=datetime.now(timezone.utc))
        except Exception:  # the scheduler is shutting down
            pass

    def _watch(self, scheduler) -> None:
        """Wake the dispatcher when another process commits to the database."""
        counter, close = self.engine.store.commit_counter()
        try:
            last = counter()
            while not self._stop.wait(WATCH_SECONDS):
                version = counter()
                if version is not None and version != last:
                    last = version
                    self._wake(scheduler)
        finally:
            close()

    def _guarded(self, job):
        """A scheduled job that survives a busy, full or read-only store: it logs one line
        and the jobs pause (1 s, doubling to a minute) while the condition lasts."""
        def run() -> None:
            if time.monotonic() < self._paused_until:
                return
            try:
                job()
                self._backoff = 0.0
            except StoreUnavailable as exc:
                self._backoff = min(max(self._backoff * 2, 1.0), 60.0)
                self._paused_until = time.monotonic() + self._backoff
                log.warning("%s; jobs paused %.0f s", exc.message, self._backoff)
        run.__name__ = getattr(job, "__name__", "job")
        return run

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT; finish the current effect, then return (exit 0)."""
        self.sweep_leftovers()
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per run
        cfg = self.engine.config["daemon"]
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},  # one SQLite connection, one thread
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=timezone.utc,
        )
        now = datetime.now(timezone.utc)
        scheduler.add_job(self._guarded(self.deadlines), "interval", seconds=cfg["deadline_seconds"], id="deadlines",
                          next_run_time=now)
        scheduler.add_job(self._guarded(self._dispatch_job), "interval", seconds=cfg["dispatch_seconds"],
                          id="dispatch", next_run_time=now)
        scheduler.add_job(self._guarded(self.renewals), "interval", seconds=cfg["renewal_seconds"], id="renewals",
                          next_run_time=now)
        self.engine.on_commit(lambda: self._wake(scheduler))

        signalled = []

        def stop(signum, frame) -> None:
            # plain flags only (no locks) here: the main loop does the shutdown
            self.dispatcher.stopping = True
            signalled.append(signum)

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        watcher = threading.Thread(target=self._watch, args=(scheduler,), name="certflow-watch",
                                   daemon=True)
        try:
            scheduler.start()
            watcher.start()
            log.info("certflow daemon started (lease owner %s)", self.dispatcher.owner)
            while not signalled:
                time.sleep(0.1)
            log.info("signal %s: finishing the current effect, then exiting", signalled[0])
            self._stop.set()
            scheduler.shutdown(wait=True)  # waits for a running job, which stops after its effect
        finally:
            self._stop.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        watcher.join(timeout=5)
        log.info("certflow daemon stopped")
