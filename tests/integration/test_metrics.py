"""Issue 19: a running ``certflow daemon`` serves /metrics and /healthz on loopback; the
values follow known orders, and every metric the documented alert rules use is served."""
from __future__ import annotations

import re
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.daemon import wait_for
from support.helpers import ROOT, cli_json, configure, free_port, place_args, run_cli
from workflow.clock import parse_iso
from workflow.effects.renewal import due_at

OPERATIONS = ROOT / "docs" / "operations.md"


def scrape(base: str) -> tuple[str, dict[tuple, float]]:
    text = httpx.get(f"{base}/metrics", timeout=30).raise_for_status().text
    return text, {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for family in text_string_to_metric_families(text) for s in family.samples}


def served_names(text: str) -> set[str]:
    """Metric names of the exposition, with a histogram's _bucket/_sum/_count series."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def rule_metric_names() -> set[str]:
    page = OPERATIONS.read_text(encoding="utf-8")
    rules = page.split("### Alert rules", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    return set(re.findall(r"\bcertflow_[a-z_]+", rules))


def test_daemon_serves_metrics_and_health_after_known_orders(workspace, daemons):
    port = free_port()
    configure(workspace, {"daemon.metrics_listen": f"127.0.0.1:{port}"})
    base = f"http://127.0.0.1:{port}"
    ids = []
    for cn in ("www.example.jp", "shop.example.jp"):
        order = cli_json(workspace, "order", "place", *place_args(common_name=cn))
        run_cli(workspace, "order", "pay", order["id"], check=True)
        ids.append(order["id"])
    waiting = cli_json(workspace, "order", "place",  # stays ordered
                       *place_args(common_name="mail.example.jp"))["id"]
    started = time.time()
    daemons(workspace)

    def all_installed():
        shown = [cli_json(workspace, "order", "show", i) for i in ids]
        return shown if all(o["state"] == "installed" for o in shown) else None
    shown = wait_for(all_installed, what="both orders installed")

    def settled():
        text, samples = scrape(base)
        pending = sum(v for (n, _), v in samples.items() if n == "certflow_outbox_pending")
        done = samples.get(("certflow_effects_total", (("effect", "install"), ("result", "done"))))
        return (text, samples) if pending == 0 and done == 2 else None
    text, samples = wait_for(settled, what="the outbox drained and both installs counted")

    assert samples[("certflow_orders", (("state", "installed"),))] == 2
    assert samples[("certflow_orders", (("state", "ordered"),))] == 1
    assert samples[("certflow_orders", (("state", "on_hold"),))] == 0
    assert samples[("certflow_outbox_oldest_due_seconds", ())] == 0
    assert samples[("certflow_effect_duration_seconds_count", (("effect", "install"),))] == 2
    assert started <= samples[("certflow_daemon_last_pass_timestamp_seconds", ())] <= time.time()
    for order in shown:
        labels = (("common_name", order["common_name"]), ("contract", "C-1001"),
                  ("order", order["id"]))
        nb, na = (parse_iso(order["certificate"][k]) for k in ("not_before", "not_after"))
        assert samples[("certflow_certificate_expiration_timestamp_seconds", labels)] == \
            na.timestamp()
        assert samples[("certflow_certificate_renewal_timestamp_seconds", labels)] == \
            due_at(nb, na, 0.667).timestamp()
    assert not [k for k in samples if dict(k[1]).get("order") == waiting]

    used = rule_metric_names()
    assert {"certflow_orders", "certflow_outbox_oldest_due_seconds",
            "certflow_daemon_last_pass_timestamp_seconds",
            "certflow_certificate_expiration_timestamp_seconds"} <= used
    assert used <= served_names(text), used - served_names(text)

    health = httpx.get(f"{base}/healthz", timeout=30)
    assert health.status_code == 200 and health.text.startswith("ok"), health.text
    assert httpx.get(f"{base}/other", timeout=30).status_code == 404

