"""``certflow daemon``: APScheduler 3.x jobs, all driven by the database.

Effects run on a pool of ``[effects] workers`` threads (:mod:`workflow.effects.pool`,
further-along work first, per-kind limits); it looks for due effects at once after a
commit and every ``[daemon] dispatch_seconds`` otherwise. APScheduler jobs fire due
deadlines (every ``deadline_seconds``: the 10-day approval expiry and the reminders
before it fire to the minute) and open due renewals. Everything rebuilds its view from
the database, so a restart loses nothing; ``misfire_grace_time=None`` and
``coalesce=True`` make a missed run happen late rather than never, once, and a run
skipped because the previous one still runs is not worth a warning (it is logged at
debug level).

"At once after a commit" covers commits of other processes too (the provisioning
backend paying an order through the library): a watcher thread reads SQLite's
``PRAGMA data_version``, which changes whenever another connection commits, a few
times a second, and wakes the dispatcher.

A busy, full or read-only store (StoreUnavailable) does not stop the daemon: the job
logs one line and the jobs pause, doubling up to a minute, until the store works again.

SIGTERM/SIGINT let the running effects finish, hand back every claimed row not started
(and any lease still held) for the next daemon, and exit 0. ``daemon --once`` runs the
effects due now one at a time, in the same order.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timezone

from workflow.effects import deadlines, metrics
from workflow.effects import renewal
from workflow.effects.dispatcher import Dispatcher
from workflow.effects.pool import WorkerPool
from workflow.errors import StoreUnavailable

log = logging.getLogger("certflow.daemon")

#: how often the watcher looks for commits made by other processes (seconds): a pay
#: through the library reaches the workers within this
WATCH_SECONDS = 0.02


class Daemon:
    """The scheduled jobs over one engine. ``run_once`` for cron and tests,
    ``run_forever`` for the long-running service."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.dispatcher = Dispatcher(engine)
        self._lock = threading.Lock()       # one job at a time on the engine's connection
        self._stop = threading.Event()
        self._backoff = 0.0                 # seconds the jobs pause after StoreUnavailable
        self._paused_until = 0.0
        self._swept = False

    def sweep_leftovers(self) -> None:
        """Once per daemon: remove the temporary files a killed predecessor left behind."""
        if not self._swept:
            self._swept = True
            for path in self.engine.adapters.sweep_leftovers(self.engine.contracts.list()):
                log.info("removed %s, left by a process killed mid-install", path)

    # one pass of each job ---------------------------------------------------------

    def dispatch(self) -> int:
        with self._lock:
            done = self.dispatcher.drain()
        metrics.pass_done()
        return done

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

    def _watch(self, wake) -> None:
        """Wake the dispatcher when another process commits to the database."""
        counter, close = self.engine.store.commit_counter()
        try:
            last = counter()
            while not self._stop.wait(WATCH_SECONDS):
                version = counter()
                if version is not None and version != last:
                    last = version
                    wake()
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
        logging.getLogger("apscheduler.scheduler").addFilter(_quiet_skips)
        cfg = self.engine.config["daemon"]
        from workflow.ops import exporter
        metrics_endpoint = exporter.start(self.engine)  # None unless [daemon] metrics_listen
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},  # one SQLite connection, one thread
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=timezone.utc,
        )
        now = datetime.now(timezone.utc)
        scheduler.add_job(self._guarded(self.deadlines), "interval", seconds=cfg["deadline_seconds"], id="deadlines",
                          next_run_time=now)
        scheduler.add_job(self._guarded(self.renewals), "interval", seconds=cfg["renewal_seconds"], id="renewals",
                          next_run_time=now)
        pool = WorkerPool(self.engine, owner=self.dispatcher.owner)
        self.engine.on_commit(pool.wake)

        signalled = []

        def stop(signum, frame) -> None:
            # plain flags only (no locks) here: the main loop does the shutdown
            self.dispatcher.stopping = True
            signalled.append(signum)

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        watcher = threading.Thread(target=self._watch, args=(pool.wake,), name="certflow-watch",
                                   daemon=True)
        try:
            pool.start()
            scheduler.start()
            watcher.start()
            log.info("certflow daemon started (lease owner %s, %d workers)", pool.owner,
                     pool.size)
            while not signalled:
                time.sleep(0.1)
            log.info("signal %s: finishing the running effects, then exiting", signalled[0])
            self._stop.set()
            scheduler.shutdown(wait=True)  # waits for a running deadline or renewal pass
            pool.stop()                    # waits for the running effects, hands back the rest
        finally:
            self._stop.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if metrics_endpoint is not None:
                metrics_endpoint.close()
        watcher.join(timeout=5)
        log.info("certflow daemon stopped")


def _quiet_skips(record: logging.LogRecord) -> bool:
    """A job still running when its next run is due is normal (a long deadline sweep):
    the skipped run becomes a debug line, not a warning per interval."""
    if "maximum number of running instances reached" in record.getMessage():
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.DEBUG)
    return True
