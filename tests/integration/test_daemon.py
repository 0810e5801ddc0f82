"""The daemon (issue 4) as a process: orders carried by `daemon --once` passes, the 10-day
approval expiry under faketime, the long-running daemon woken by other processes' commits
and stopped by SIGTERM."""
from __future__ import annotations

import hashlib
import shutil
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from support import mailfolder
from support.daemon import mails_of, wait_for
from support.helpers import ORDER, cli_json, configure, place_args, run_cli
from workflow.clock import parse_iso


needs_faketime = pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime not installed")


def faketime(hours: int) -> list[str]:
    """Run a CLI command ``hours`` ahead of now. libfaketime 0.9.10 reads one unit only:
    ``-f +9d23h`` would move the clock by 9 hours, so 9 d 23 h is written ``+239h``."""
    return ["faketime", "-f", f"+{hours}h"]


def place_and_pay(config: Path, **overrides) -> str:
    order = cli_json(config, "order", "place", *place_args(**overrides))
    run_cli(config, "order", "pay", order["id"], check=True)
    return order["id"]


def daemon_once(config: Path, prefix: list[str] | None = None) -> None:
    run_cli(config, "daemon", "--once", check=True, prefix=prefix)


# --- through the CLI ---------------------------------------------------------------


def test_file_validated_order_is_installed_by_daemon_passes_alone(workspace):
    order_id = place_and_pay(workspace)
    daemon_once(workspace)

    order = cli_json(workspace, "order", "show", order_id)
    assert order["state"] == "installed"
    assert [e["trigger"] for e in cli_json(workspace, "order", "history", order_id)] == \
        ["place", "pay", "submit", "ca_accept", "issue", "install"]
    served = workspace.parent / "var/servers/C-1001/www.example.jp"
    assert sorted(p.name for p in served.iterdir()) == \
        ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"]
    cert_pem = (served / "cert.pem").read_text()
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == order["certificate"]["sha256"]
    assert (served / "fullchain.pem").read_text().startswith(cert_pem.strip())
    assert stat.S_IMODE((served / "privkey.pem").stat().st_mode) == 0o600
    # the validation file was placed for the CA and removed once issued
    assert not list((workspace.parent / "var/webroot").rglob("*.txt"))
    assert {m["X-Certflow-Template"] for m in mailfolder.to(workspace, ORDER["email"])} >= \
        {"order_received", "work_started", "installed"}


@needs_faketime
def test_unapproved_mail_validation_is_cancelled_after_ten_days_under_faketime(workspace):
    order_id = place_and_pay(workspace, validation="email")
    daemon_once(workspace)
    order = cli_json(workspace, "order", "show", order_id)
    assert order["state"] == "awaiting_approval" and order["approver"] == "admin@example.jp"
    accepted = [e for e in cli_json(workspace, "order", "history", order_id)
                if e["trigger"] == "ca_accept"][0]
    deadline = parse_iso(order["deadline_at"])
    assert deadline - parse_iso(accepted["at"]) == timedelta(days=10)
    assert len(mails_of(workspace, "approval_request", to="admin@example.jp")) == 1

    # 7 d 1 h on: the 3-day reminder goes to the approver; 9 d 23 h: the 1-day one; still waiting
    daemon_once(workspace, faketime(7 * 24 + 1))
    assert len(mails_of(workspace, "approval_reminder", to="admin@example.jp")) == 1
    for _ in range(2):
        daemon_once(workspace, faketime(9 * 24 + 23))
    order = cli_json(workspace, "order", "show", order_id)
    assert order["state"] == "awaiting_approval" and order["reason"] is None
    assert len(mails_of(workspace, "approval_reminder", to="admin@example.jp")) == 2

    # 10 d 1 h on: cancelled, the customer told why, the CA application withdrawn
    daemon_once(workspace, faketime(10 * 24 + 1))
    order = cli_json(workspace, "order", "show", order_id)
    assert order["state"] == "cancelled"
    assert "approve" in order["reason"] and "10 days" in order["reason"]
    assert order["deadline_at"] is None
    history = cli_json(workspace, "order", "history", order_id)
    assert (history[-1]["trigger"], history[-1]["actor"]) == ("expire", "deadline")
    [told] = mails_of(workspace, "cancelled", to=ORDER["email"])
    assert "10" in mailfolder.body(told)
    [app] = [a for a in cli_json(workspace, "ca", "applications") if a["order_id"] == order_id]
    assert app["status"] == "cancelled"

    refused = run_cli(workspace, "order", "pay", order_id)
    assert refused.returncode == 2
    assert "cancelled" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert cli_json(workspace, "order", "show", order_id)["version"] == order["version"]


@needs_faketime
def test_a_missed_expiry_fires_late_rather_than_never(workspace):
    """The daemon was down over the deadline: the first pass afterwards cancels."""
    order_id = place_and_pay(workspace, validation="email")
    daemon_once(workspace)
    daemon_once(workspace, faketime(30 * 24))
    assert cli_json(workspace, "order", "show", order_id)["state"] == "cancelled"


# --- the long-running daemon ----------------------------------------------------------


def test_daemon_picks_up_a_payment_made_by_another_process_at_once(workspace, daemons):
    # a poll interval of an hour: only the commit watcher can make this order move
    configure(workspace, {"daemon.dispatch_seconds": 3600.0})
    daemon = daemons(workspace)
    order_id = place_and_pay(workspace)
    wait_for(lambda: cli_json(workspace, "order", "show", order_id)["state"] == "installed",
             what="the order to be installed by the running daemon", interval=0.5)
    assert daemon.terminate() == 0


def test_sigterm_finishes_the_current_effect_and_exits_zero(workspace, daemons):
    configure(workspace, {"daemon.dispatch_seconds": 0.2})
    ids = [place_and_pay(workspace, common_name=f"www{i}.example.jp") for i in range(3)]  # 3 sites
    daemon = daemons(workspace)
    db = workspace.parent / "var/data/certflow.db"

    def some_work_done():
        import sqlite3
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM outbox WHERE status = 'done' "
                                "AND effect != 'notify'").fetchone()[0] > 0

    wait_for(some_work_done, what="the daemon to start working")
    assert daemon.terminate() == 0
    assert "signal 15" in daemon.log_text() and "daemon stopped" in daemon.log_text()

    import sqlite3
    with sqlite3.connect(db) as conn:  # claimed work was handed back, not left leased
        leased = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending' "
                              "AND lease_owner LIKE ?", (f"%:{daemon.pid}:%",)).fetchone()[0]
    assert leased == 0
    daemon_once(workspace)
    assert {cli_json(workspace, "order", "show", i)["state"] for i in ids} == {"installed"}


def test_idle_daemon_exits_zero_on_sigterm(workspace, daemons):
    daemon = daemons(workspace)
    assert daemon.terminate(timeout=30) == 0
