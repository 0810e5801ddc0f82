"""``certflow daemon``: APScheduler 3.x jobs, all driven by the database.

Jobs: dispatch due effects (every ``[daemon] dispatch_seconds``, and at once after a
commit in this process), fire due deadlines, open due renewals. Every job rebuilds its
view from the database, so a restart loses nothing; ``misfire_grace_time=None`` and
``coalesce=True`` make a missed run happen late rather than never, once.
SIGTERM/SIGINT finish the current effect and exit 0.
"""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timezone

from workflow import deadlines, renewal
from workflow.effects import Dispatcher

log = logging.getLogger("certflow.daemon")


class Daemon:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.dispatcher = Dispatcher(engine)
        self._lock = threading.Lock()

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

    def run_forever(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        cfg = self.engine.config["daemon"]
        scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(1)},  # one SQLite connection, one thread
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=timezone.utc,
        )
        now = datetime.now(timezone.utc)
        scheduler.add_job(self.deadlines, "interval", seconds=cfg["deadline_seconds"], id="deadlines",
                          next_run_time=now)
        scheduler.add_job(self.dispatch, "interval", seconds=cfg["dispatch_seconds"], id="dispatch",
                          next_run_time=now)
        scheduler.add_job(self.renewals, "interval", seconds=cfg["renewal_seconds"], id="renewals",
                          next_run_time=now)

        def wake() -> None:  # a commit in this process: dispatch its effects now
            try:
                scheduler.modify_job("dispatch", next_run_time=datetime.now(timezone.utc))
            except Exception:  # scheduler shutting down
                pass

        self.engine.on_commit(wake)

        def stop(signum, frame) -> None:
            log.info("signal %s: finishing the current effect, then exiting", signum)
            self.dispatcher.stopping = True
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("certflow daemon started (pid owner %s)", self.dispatcher.owner)
        scheduler.start()
        with self._lock:  # wait for a running job to end
            pass
        log.info("certflow daemon stopped")
