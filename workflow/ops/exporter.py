"""The daemon's Prometheus endpoint (``[daemon] metrics_listen``): ``/metrics`` in the text
format, ``/healthz`` for a load balancer or a supervisor.

Metric names follow cert-manager's, so its alert rules translate (docs/operations.md):

- counted as work happens (:mod:`workflow.effects.metrics`): ``certflow_effects_total``,
  ``certflow_effect_duration_seconds``, ``certflow_daemon_last_pass_timestamp_seconds``;
- read from the store at each scrape (:class:`StoreCollector`, through a connection of its
  own, so a scrape never waits for the dispatcher's): ``certflow_orders``,
  ``certflow_outbox_pending``, ``certflow_outbox_oldest_due_seconds`` and the two
  per-certificate gauges.

Per-certificate series are bounded by ``[daemon] metrics_certificates`` (default 1000):
the live certificates that expire soonest (from those that expired up to 30 days ago). A million live certificates would make two
million series, about 300 MB of text per scrape, far past what one exporter should hand a
Prometheus; the soonest-expiring ones are the only ones an expiry alert can be about.
Any certificate left out expires later than every one shown, so while fewer than the
bound are within an alert's window, the bound hides none of them.

The renewal series of a certificate is absent while its renewal order is in flight (it
exists and has not ended): "expiring soon and its renewal series present" is the alert
"expiring soon with no renewal in flight". Its value is when certflow opens the renewal
(``[renewal] at`` of the lifetime; a CA's ARI advice, asked only at renewal time, can make
it earlier).
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import timedelta
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily

from adapters.base import BadInput
from adapters.common.hostport import parse_host_port
from workflow.clock import iso, parse_iso
from workflow.effects import metrics
from workflow.effects.renewal import due_at, live_states
from workflow.errors import ConfigError

log = logging.getLogger("certflow.metrics")

#: a live certificate stays in the expiry series this long after it expired (its alert
#: has fired for 44 days by then); the walk of the not_after index starts there, so a
#: scrape's cost does not grow with years of replaced certificates
EXPIRED_SHOWN = timedelta(days=30)


class StoreCollector:
    """The store-derived gauges, computed at scrape time with bounded, indexed reads."""

    def __init__(self, store, engine) -> None:
        from workflow.effects.handlers import HANDLERS
        self.store = store
        self.clock = engine.clock
        self.lifecycle = engine.lifecycle
        self.renew_at = engine.config["renewal"]["at"]
        self.cert_limit = engine.config["daemon"]["metrics_certificates"]
        self.effects = tuple(HANDLERS)

    def describe(self):
        return []  # collected only at scrape: registering must not read the store

    def collect(self):
        try:
            families = self._families()
        except Exception as exc:  # the store is down: /healthz says so; serve the rest
            log.warning("metrics: store not readable: %s", exc)
            return
        yield from families

    def _families(self) -> list:
        lc = self.lifecycle
        now = self.clock.now()
        counts = self.store.state_counts()
        orders = GaugeMetricFamily("certflow_orders", "Orders per state.", labels=("state",))
        for state in dict.fromkeys((*(s for s in lc.state_names if s != lc.initial), *counts)):
            orders.add_metric((state,), counts.get(state, 0))

        pending = self.store.pending_effect_counts()
        outbox = GaugeMetricFamily("certflow_outbox_pending", "Pending outbox rows per effect.",
                                   labels=("effect",))
        for effect in dict.fromkeys((*self.effects, *pending)):
            outbox.add_metric((effect,), pending.get(effect, 0))

        oldest = self.store.oldest_due(iso(now))
        waited = max(0.0, (now - parse_iso(oldest)).total_seconds()) if oldest else 0.0
        oldest_due = GaugeMetricFamily(
            "certflow_outbox_oldest_due_seconds",
            "How long the longest-waiting due effect has waited (0: none due).", value=waited)

        labels = ("order", "common_name", "contract")
        expiry = GaugeMetricFamily(
            "certflow_certificate_expiration_timestamp_seconds",
            "When a live certificate expires (its not_after), for the soonest-expiring "
            "live certificates.", labels=labels)
        renewal = GaugeMetricFamily(
            "certflow_certificate_renewal_timestamp_seconds",
            "When certflow opens a live certificate's renewal; absent while a renewal "
            "order is in flight.", labels=labels)
        finals = set(lc.final_states)
        since = iso(now - EXPIRED_SHOWN)
        for row in (self.store.live_certificates(live_states(lc), self.cert_limit, since)
                    if self.cert_limit else ()):
            key = (row["id"], row["common_name"], row["contract"])
            not_before, not_after = parse_iso(row["not_before"]), parse_iso(row["not_after"])
            expiry.add_metric(key, not_after.timestamp())
            if row["renewal_state"] is None or row["renewal_state"] in finals:
                renewal.add_metric(key, due_at(not_before, not_after, self.renew_at).timestamp())
        return [orders, outbox, oldest_due, expiry, renewal]


class ProgressCollector:
    """``certflow_daemon_last_pass_timestamp_seconds`` (absent until the first pass)."""

    def describe(self):
        return []

    def collect(self):
        last = metrics.PROGRESS.last_pass
        if last is not None:
            yield GaugeMetricFamily("certflow_daemon_last_pass_timestamp_seconds",
                                    "When the daemon's last dispatch pass ended (Unix time).",
                                    value=last)


class _Forward:
    """Another registry's metrics inside this one (certflow's effect counters)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def describe(self):
        return []

    def collect(self):
        return self.registry.collect()


def registry_for(store, engine) -> CollectorRegistry:
    """A registry of its own (never prometheus-client's global one) with every metric."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(metrics.REGISTRY))
    registry.register(ProgressCollector())
    registry.register(StoreCollector(store, engine))
    return registry


def health(store, stale_seconds: float) -> tuple[bool, str]:
    """(healthy, one line): a dispatch pass ended or an effect finished within
    ``stale_seconds``, and the store answers a read."""
    latest = metrics.PROGRESS.latest()
    if latest is None:
        return False, "no dispatch pass has ended yet"
    age = time.time() - latest
    if age > stale_seconds:
        return False, f"last dispatch pass {age:.0f} s ago (more than {stale_seconds:g} s)"
    try:
        store.schema_version()
    except Exception as exc:
        return False, f"store not readable: {exc}"
    return True, f"ok: last dispatch pass {age:.1f} s ago"


def app_for(store, engine):
    """The WSGI application: /metrics, /healthz, 404 for anything else."""
    metrics_app = make_wsgi_app(registry_for(store, engine))
    stale = engine.config["daemon"]["health_seconds"]

    def app(environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            ok, text = health(store, stale)
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8")])
            return [(text + "\n").encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics or /healthz\n"]
    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # a scrape every 15 s is not news
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Exporter:
    """The endpoint, served by a thread of its own until :meth:`close`."""

    def __init__(self, server: WSGIServer, store) -> None:
        self.server, self.store = server, store
        self.address = server.server_address[:2]
        self._thread = threading.Thread(target=server.serve_forever, name="certflow-metrics",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        self.store.close()


def start(engine) -> Exporter | None:
    """Serve ``[daemon] metrics_listen``; None when it is empty. A malformed address or
    one that cannot be bound is a ConfigError naming the key (exit 2, nothing run)."""
    listen = engine.config["daemon"]["metrics_listen"].strip()
    if not listen:
        return None
    try:
        host, port = parse_host_port(listen, "daemon.metrics_listen")
    except BadInput as exc:
        raise ConfigError("daemon.metrics_listen", exc.message, str(engine.config.path)) from None
    server_class = type("_Server", (_Server,), {
        "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    store = engine.store.another()  # its own connection: a scrape never waits for a worker
    try:
        server = make_server(host, port, app_for(store, engine), server_class,
                             handler_class=_Quiet)
    except OSError as exc:
        store.close()
        raise ConfigError("daemon.metrics_listen", f"daemon.metrics_listen {listen}: cannot "
                          f"listen: {exc.strerror or exc}", str(engine.config.path)) from None
    exporter = Exporter(server, store)
    log.info("metrics at http://%s/metrics, health at /healthz", listen)
    return exporter
