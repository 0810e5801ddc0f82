"""Issue 19: the alert rules of docs/operations.md are valid Prometheus rules and fire on
what they say (promtool's rule unit tests over synthetic series). That the daemon serves
every metric they use is checked on a running daemon in tests/integration/test_metrics.py."""
from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

from support.helpers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool not installed (Debian package prometheus)")

DAY = 86400
#: every test evaluates at 2 h (past each rule's `for`); time() is then 7200
NOW = 7200
CERT = 'order="{o}",common_name="{o}.example.jp",contract="C-1001"'


def documented_rules() -> str:
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    return page.split("### Alert rules", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]


def series(name: str, value: str, labels: str = "") -> str:
    return f"      - series: '{name}{{{labels}}}'\n        values: '{value}'\n"


def run_promtool(tmp_path, inputs: str, expected: str) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yml").write_text(documented_rules())
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
        "    input_series:\n" + inputs + "    alert_rule_test:\n" + textwrap.indent(
            textwrap.dedent(expected), "      "))
    return subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")],
                          capture_output=True, text=True, timeout=120)


def test_documented_rules_are_valid(tmp_path):
    (tmp_path / "rules.yml").write_text(documented_rules())
    proc = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "SUCCESS: 4 rules found" in proc.stdout, proc.stdout + proc.stderr


def test_rules_fire_on_trouble(tmp_path):
    expiring = NOW + 10 * DAY
    inputs = (
        # A: expires in 10 days, no renewal in flight (its renewal series is there): alert
        series("certflow_certificate_expiration_timestamp_seconds", f"{expiring}x180", CERT.format(o="a"))
        + series("certflow_certificate_renewal_timestamp_seconds", "0x180", CERT.format(o="a"))
        # B: expires in 10 days, its renewal in flight (no renewal series): quiet
        + series("certflow_certificate_expiration_timestamp_seconds", f"{expiring}x180", CERT.format(o="b"))
        # C: expires in 60 days: quiet
        + series("certflow_certificate_expiration_timestamp_seconds", f"{NOW + 60 * DAY}x180", CERT.format(o="c"))
        + series("certflow_certificate_renewal_timestamp_seconds", f"{NOW + 40 * DAY}x180", CERT.format(o="c"))
        + series("certflow_orders", "2x180", 'state="on_hold"')
        + series("certflow_outbox_oldest_due_seconds", "1200x180")
        + series("certflow_daemon_last_pass_timestamp_seconds", "0x180")  # stopped at 0
        + series("up", "1x180", 'job="certflow"'))
    proc = run_promtool(tmp_path, inputs, """\
        - eval_time: 2h
          alertname: CertflowCertificateExpiringWithoutRenewal
          exp_alerts:
            - exp_labels: {severity: critical, order: a, common_name: a.example.jp, contract: C-1001}
              exp_annotations:
                summary: "a.example.jp (order a) expires in 10d 0h 0m 0s; no renewal in flight"
        - eval_time: 2h
          alertname: CertflowOrdersOnHold
          exp_alerts:
            - exp_labels: {severity: warning, state: on_hold}
              exp_annotations: {summary: "orders on hold: 2"}
        - eval_time: 2h
          alertname: CertflowEffectOverdue
          exp_alerts:
            - exp_labels: {severity: warning}
              exp_annotations: {summary: "the oldest due effect has waited 20m 0s"}
        - eval_time: 2h
          alertname: CertflowDaemonDown
          exp_alerts:
            - exp_labels: {severity: critical}
              exp_annotations: {summary: "the certflow daemon is down or not dispatching"}
        """)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_quiet_when_all_is_well(tmp_path):
    inputs = (
        series("certflow_certificate_expiration_timestamp_seconds", f"{NOW + 60 * DAY}x180", CERT.format(o="c"))
        + series("certflow_certificate_renewal_timestamp_seconds", f"{NOW + 40 * DAY}x180", CERT.format(o="c"))
        + series("certflow_orders", "0x180", 'state="on_hold"')
        + series("certflow_outbox_oldest_due_seconds", "0x180")
        + series("certflow_daemon_last_pass_timestamp_seconds", "0+60x180")  # keeps up with time()
        + series("up", "1x180", 'job="certflow"'))
    expected = "".join(f"- eval_time: 2h\n  alertname: {name}\n  exp_alerts: []\n" for name in (
        "CertflowCertificateExpiringWithoutRenewal", "CertflowOrdersOnHold",
        "CertflowEffectOverdue", "CertflowDaemonDown"))
    proc = run_promtool(tmp_path, inputs, expected)
    assert proc.returncode == 0, proc.stdout + proc.stderr
