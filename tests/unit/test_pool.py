"""The daemon's worker pool (issue 18), in-process on a real engine and store, with many
workers: a stalled notifier does not hold back certificates, per-kind limits hold
(measured by the adapters at their Protocol boundary), leases are renewed while an
effect runs longer than its lease, and a stopping pool hands every lease back."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest

from support.daemon import pay_orders, wait_for
from support.helpers import make_workspace
from workflow import config as config_mod
from workflow.clock import parse_iso
from workflow.effects import priority
from workflow.effects.dispatcher import Dispatcher
from workflow.effects.pool import WorkerPool
from workflow.engine import Engine

#: a test gate is opened by the test; this only ends a broken test instead of hanging it
GATE_TIMEOUT = 60.0


class Gauge:
    """Counts calls in flight at an adapter boundary and the most ever seen at once;
    each call waits for ``gate`` (set: no waiting)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate or threading.Event()
        self.in_flight = 0
        self.most = 0
        self.done = 0
        self._lock = threading.Lock()

    @contextmanager
    def call(self):
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            assert self.gate.wait(GATE_TIMEOUT), "the test never opened the gate"
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
                self.done += 1


class GaugedNotifier:
    def __init__(self, inner, gauge: Gauge) -> None:
        self.inner, self.gauge = inner, gauge

    def send(self, notice) -> None:
        with self.gauge.call():
            self.inner.send(notice)


class GaugedInstaller:
    def __init__(self, inner, gauge: Gauge) -> None:
        self.inner, self.gauge = inner, gauge

    def install(self, bundle, targets) -> None:
        with self.gauge.call():
            self.inner.install(bundle, targets)

    def __getattr__(self, name):  # optional abilities (sweep_leftovers) pass through
        return getattr(self.inner, name)


def _engine(tmp_path, settings: dict) -> Engine:
    config = make_workspace(tmp_path / "ws", {"effects.workers": 16, **settings})
    return Engine(config_mod.load(config))  # the wall clock: postponed rows fall due


def _states(engine, ids) -> set[str]:
    return {engine.get(i).state for i in ids}


@pytest.fixture
def pools():
    started: list[WorkerPool] = []

    def start(engine) -> WorkerPool:
        pool = WorkerPool(engine).start()
        started.append(pool)
        return pool

    yield start
    for pool in started:
        if not pool._stopping.is_set():
            pool.stop()


def test_a_stalled_notifier_does_not_delay_installation(tmp_path, pools):
    engine = _engine(tmp_path, {})
    mail = Gauge()  # every send stalls until the test lets it go
    engine.adapters.notifier = GaugedNotifier(engine.adapters.notifier, mail)
    try:
        ids = pay_orders(engine, 6)
        pool = pools(engine)
        wait_for(lambda: _states(engine, ids) == {"installed"},
                 what="every order installed while the mail server stalls")
        assert mail.done == 0 and mail.in_flight == 4  # [effects.limits] notify = 4, all stuck
        mail.gate.set()
        wait_for(lambda: engine.store.conn.execute(
            "SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0] == 0,
            what="the mail backlog to drain")
        pool.stop()
        assert mail.done == 6 * 4  # received, started, approval pending, installed: once each
    finally:
        mail.gate.set()
        engine.close()


def test_per_kind_limits_hold_with_many_workers(tmp_path, pools):
    engine = _engine(tmp_path, {"effects.limits.notify": 2, "effects.limits.install": 1})
    mail, install = Gauge(), Gauge()
    engine.adapters.notifier = GaugedNotifier(engine.adapters.notifier, mail)
    engine.adapters.installer = GaugedInstaller(engine.adapters.installer, install)
    try:
        ids = pay_orders(engine, 5)
        pools(engine)
        wait_for(lambda: mail.in_flight == 2 and install.in_flight == 1,
                 what="the mail and install limits to fill")
        # the other 13 workers are idle and work of both kinds is due: none may start
        wait_for(lambda: _states(engine, ids) <= {"issued"}, what="every order issued")
        assert (mail.in_flight, install.in_flight) == (2, 1)
        mail.gate.set()
        install.gate.set()
        wait_for(lambda: _states(engine, ids) == {"installed"}, what="every order installed")
        assert (mail.most, install.most) == (2, 1)
        assert install.done == 5
    finally:
        mail.gate.set()
        install.gate.set()
        engine.close()


def test_leases_are_renewed_while_an_effect_runs_longer_than_its_lease(tmp_path, pools):
    engine = _engine(tmp_path, {"effects.lease_seconds": 2})
    install = Gauge()
    engine.adapters.installer = GaugedInstaller(engine.adapters.installer, install)
    try:
        [order_id] = pay_orders(engine, 1)
        pool = pools(engine)
        wait_for(lambda: install.in_flight == 1, what="the install to start")
        row = dict(engine.store.conn.execute(
            "SELECT id, lease_owner, lease_until FROM outbox WHERE effect = 'install'").fetchone())
        assert row["lease_owner"] == pool.owner
        first_until = parse_iso(row["lease_until"])

        def lease_until():
            return parse_iso(engine.store.conn.execute(
                "SELECT lease_until FROM outbox WHERE id = ?", (row["id"],)).fetchone()[0])

        # past the first lease: it was extended, and another daemon cannot take the row
        wait_for(lambda: lease_until() > first_until + timedelta(seconds=1),
                 what="the lease to be renewed past its first end")
        other = Dispatcher(engine, owner="other-host:1:cafe")
        assert [r for r in other.claim() if r["effect"] == "install"] == []
        install.gate.set()
        wait_for(lambda: engine.get(order_id).state == "installed", what="the install")
        assert (install.done, install.most) == (1, 1) and pool.leases.renewals >= 2
        assert engine.store.conn.execute("SELECT attempts FROM outbox WHERE id = ?",
                                         (row["id"],)).fetchone()[0] == 0
    finally:
        install.gate.set()
        engine.close()


def test_a_stopping_pool_hands_back_every_lease(tmp_path, pools):
    engine = _engine(tmp_path, {})
    mail = Gauge()
    engine.adapters.notifier = GaugedNotifier(engine.adapters.notifier, mail)
    try:
        ids = pay_orders(engine, 3)
        pool = pools(engine)
        wait_for(lambda: _states(engine, ids) == {"installed"} and mail.in_flight == 4,
                 what="the orders installed, four mails stalled")
        stopper = threading.Thread(target=pool.stop)
        stopper.start()
        wait_for(lambda: pool._stopping.is_set(), what="the pool to begin stopping")
        mail.gate.set()  # the running sends finish; nothing new starts
        stopper.join(GATE_TIMEOUT)
        assert not stopper.is_alive()
        conn = engine.store.conn
        assert conn.execute("SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'"
                            ).fetchone()[0] == 3 * 4 - mail.done
    finally:
        mail.gate.set()
        engine.close()


def test_dispatch_order_puts_certificates_before_mail():
    kinds = config_mod.EFFECT_KINDS
    assert set(priority.ORDER) == set(kinds)  # a new effect kind gets a place here
    order = priority.ranked(kinds)
    assert order.index("install") < order.index("poll_ca") < order.index("submit_ca") \
        < order.index("make_csr") < order.index("notify") == len(order) - 1
    assert priority.wanted(kinds, 3, {"install": 1}, {"install": 1})[0] == ("deliver", 3)


def test_a_skipped_scheduler_run_is_no_warning():
    import logging
    from workflow.effects.daemon import _quiet_skips
    skipped = logging.LogRecord("apscheduler.scheduler", logging.WARNING, __file__, 1,
                                'Execution of job "%s" skipped: maximum number of running '
                                'instances reached (%d)', ("deadlines", 1), None)
    assert _quiet_skips(skipped) is False and skipped.levelno == logging.DEBUG
    other = logging.LogRecord("apscheduler.scheduler", logging.WARNING, __file__, 1,
                              "Job raised an exception", (), None)
    assert _quiet_skips(other) is True and other.levelno == logging.WARNING


@pytest.mark.parametrize("setting, message", [
    ({"effects.limits.bogus": 3}, "unknown key effects.limits.bogus: use one of notify"),
    ({"effects.limits.notify": 0}, "effects.limits.notify 0 out of range: must be at least 1"),
    ({"effects.limits.notify": "4"}, "effects.limits.notify must be an integer"),
    ({"effects.workers": 0}, "effects.workers 0 out of range"),
])
def test_bad_worker_settings_are_refused_naming_the_key(tmp_path, setting, message):
    from workflow.errors import ConfigError
    config = make_workspace(tmp_path / "ws", setting)
    with pytest.raises(ConfigError) as refused:
        config_mod.load(config)
    assert message in str(refused.value)


def test_a_limit_not_named_keeps_its_default(tmp_path):
    config = config_mod.load(make_workspace(tmp_path / "ws", {"effects.limits.notify": 1}))
    assert priority.limits_of(config["effects"]) == {**config_mod.EFFECT_LIMITS, "notify": 1}
