"""Issue 19: the metrics read from the store at scrape time, on a real engine and store
(the endpoint itself is scraped from a running daemon in tests/integration/test_metrics.py)."""
from __future__ import annotations

import time
from datetime import timedelta

from prometheus_client import REGISTRY as GLOBAL_REGISTRY, generate_latest

from support.helpers import ORDER, configure, installed_order, run_cli
from workflow import config as config_mod
from workflow.clock import parse_iso
from workflow.effects import metrics
from workflow.effects.daemon import Daemon
from workflow.effects.renewal import due_at
from workflow.engine import Engine
from workflow.ops.exporter import health, registry_for


def scrape(engine) -> dict[tuple, float]:
    """{(name, (label pairs...)): value} of one scrape of every certflow metric."""
    from prometheus_client.parser import text_string_to_metric_families
    text = generate_latest(registry_for(engine.store, engine)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def series(samples: dict, name: str) -> dict[str, float]:
    """order id → value of one per-certificate metric."""
    return {dict(labels)["order"]: v for (n, labels), v in samples.items() if n == name}


EXPIRY = "certflow_certificate_expiration_timestamp_seconds"
RENEWAL = "certflow_certificate_renewal_timestamp_seconds"


def test_store_gauges_follow_the_orders(engine, clock):
    first = installed_order(engine)
    clock.advance(timedelta(hours=1))
    second = installed_order(engine, common_name="www.example.com")
    waiting = engine.place(**ORDER)  # ordered, not paid

    samples = scrape(engine)
    assert samples[("certflow_orders", (("state", "installed"),))] == 2
    assert samples[("certflow_orders", (("state", "ordered"),))] == 1
    assert samples[("certflow_orders", (("state", "on_hold"),))] == 0  # every state, zeros too
    assert samples[("certflow_outbox_oldest_due_seconds", ())] == 0
    for o in (first, second):
        nb, na = parse_iso(o.certificate.not_before), parse_iso(o.certificate.not_after)
        assert series(samples, EXPIRY)[o.id] == na.timestamp()
        assert series(samples, RENEWAL)[o.id] == due_at(nb, na, 0.667).timestamp()
    assert waiting.id not in series(samples, EXPIRY)  # no certificate, not live
    labels = dict(next(lb for (n, lb) in samples if n == EXPIRY and dict(lb)["order"] == second.id))
    assert labels == {"order": second.id, "common_name": "www.example.com", "contract": "C-1001"}

    # an effect waiting to run: counted per effect, and its age grows with the clock
    engine.fire(waiting.id, "pay")
    clock.advance(timedelta(minutes=20))
    samples = scrape(engine)
    assert samples[("certflow_outbox_pending", (("effect", "make_csr"),))] == 1
    assert samples[("certflow_outbox_oldest_due_seconds", ())] == 20 * 60


def test_per_certificate_series_are_the_soonest_to_expire_within_the_bound(workspace, clock):
    config = config_mod.load(workspace)
    config["daemon"]["metrics_certificates"] = 1
    engine = Engine(config, clock)
    soon = installed_order(engine)
    clock.advance(timedelta(days=3))
    installed_order(engine, common_name="www.example.com")  # expires 3 days later
    samples = scrape(engine)
    assert set(series(samples, EXPIRY)) == {soon.id}
    config["daemon"]["metrics_certificates"] = 0
    assert series(scrape(engine), EXPIRY) == {}
    engine.close()


def test_an_expired_live_certificate_stays_shown_for_30_days(engine, clock):
    order = installed_order(engine)  # no daemon runs later: its renewal never opens
    not_after = parse_iso(order.certificate.not_after)
    clock.set(not_after + timedelta(days=29))
    assert series(scrape(engine), EXPIRY) == {order.id: not_after.timestamp()}
    clock.set(not_after + timedelta(days=31))
    assert series(scrape(engine), EXPIRY) == {}


def test_renewal_series_absent_while_a_renewal_is_in_flight(workspace, clock):
    config = config_mod.load(workspace)
    config["renewal"]["auto_pay"] = False  # the renewal waits in `ordered`: in flight
    engine = Engine(config, clock)
    old = installed_order(engine)
    nb, na = parse_iso(old.certificate.not_before), parse_iso(old.certificate.not_after)
    clock.set(due_at(nb, na, 0.7))
    Daemon(engine).run_once()
    [renewal] = [o for o in engine.list() if o.renewal_of == old.id]
    assert renewal.state == "ordered"
    samples = scrape(engine)
    assert old.id in series(samples, EXPIRY)        # still the live certificate
    assert old.id not in series(samples, RENEWAL)   # ... with its renewal in flight

    engine.fire(renewal.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(renewal.id).state == "installed"
    samples = scrape(engine)
    assert set(series(samples, EXPIRY)) == {renewal.id}  # the replaced one is not live
    assert set(series(samples, RENEWAL)) == {renewal.id}
    engine.close()


def test_effect_outcomes_are_counted_and_timed(engine):
    def count(effect, result):
        return metrics.EFFECTS_TOTAL.labels(effect, result)._value.get()

    def observed(effect):
        return sum(b.get() for b in metrics.EFFECT_SECONDS.labels(effect)._buckets)

    before = count("install", "done"), observed("install")
    installed_order(engine)
    assert (count("install", "done"), observed("install")) == (before[0] + 1, before[1] + 1)
    samples = scrape(engine)
    assert samples[("certflow_effects_total", (("effect", "install"), ("result", "done")))] \
        == before[0] + 1


def test_no_certflow_metric_in_the_global_registry(engine):
    installed_order(engine)
    scrape(engine)
    assert not [n for n in GLOBAL_REGISTRY._names_to_collectors if n.startswith("certflow")]


def test_health_needs_a_recent_pass_and_a_readable_store(engine):
    saved = metrics.PROGRESS.last_pass, metrics.PROGRESS.last_effect
    try:
        metrics.PROGRESS.last_pass = metrics.PROGRESS.last_effect = None
        assert health(engine.store, 60) == (False, "no dispatch pass has ended yet")
        metrics.PROGRESS.last_pass = time.time() - 600
        ok, text = health(engine.store, 60)
        assert not ok and "more than 60 s" in text
        metrics.pass_done()
        ok, text = health(engine.store, 60)
        assert ok, text
        engine.store.close()
        ok, text = health(engine.store, 60)
        assert not ok and text.startswith("store not readable"), text
    finally:
        metrics.PROGRESS.last_pass, metrics.PROGRESS.last_effect = saved


def test_metrics_address_taken_refuses_to_start(workspace):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        configure(workspace, {"daemon.metrics_listen": f"127.0.0.1:{port}"})
        proc = run_cli(workspace, "daemon", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "daemon.metrics_listen" in proc.stderr and "cannot listen" in proc.stderr
    configure(workspace, {"daemon.metrics_listen": "localhost"})
    proc = run_cli(workspace, "daemon", timeout=120)
    assert proc.returncode == 2 and "daemon.metrics_listen" in proc.stderr, proc.stderr
