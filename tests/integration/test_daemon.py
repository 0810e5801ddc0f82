"""The daemon (issue 4): orders carried by `daemon --once` passes, the 10-day approval
expiry under faketime, reminders and deadlines to the minute, the long-running daemon
woken by other processes' commits and stopped by SIGTERM."""
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
from workflow.effects.daemon import Daemon

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


# --- deadlines to the minute, with the engine's movable clock --------------------------


def _paid_email_order(engine) -> str:
    order = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "awaiting_approval"
    return order.id


def _reminders(engine, to: str) -> list:
    return mails_of(engine.config.path, "approval_reminder", to=to)


def test_approval_reminders_fire_at_three_and_one_day_before_the_deadline(engine, clock):
    daemon = Daemon(engine)
    order_id = _paid_email_order(engine)
    deadline = parse_iso(engine.get(order_id).deadline_at)
    assert deadline == clock.now() + timedelta(days=10)

    for days, expected in ((3, 1), (1, 2)):
        clock.set(deadline - timedelta(days=days, minutes=1))
        daemon.run_once()
        assert len(_reminders(engine, "admin@example.jp")) == expected - 1
        clock.set(deadline - timedelta(days=days))
        daemon.run_once()
        assert len(_reminders(engine, "admin@example.jp")) == expected
        assert len(_reminders(engine, ORDER["email"])) == expected  # the customer is told too

    clock.set(deadline - timedelta(minutes=1))
    daemon.run_once()
    assert engine.get(order_id).state == "awaiting_approval"
    clock.set(deadline)
    daemon.run_once()
    assert engine.get(order_id).state == "cancelled"
    expired = engine.history(order_id)[-1]
    assert (expired.trigger, parse_iso(expired.at)) == ("expire", deadline)


def test_no_reminder_once_the_order_moved_on(engine, clock):
    daemon = Daemon(engine)
    order_id = _paid_email_order(engine)
    deadline = parse_iso(engine.get(order_id).deadline_at)
    [request] = mails_of(engine.config.path, "approval_request", to="admin@example.jp")

    clock.set(deadline - timedelta(days=5))
    engine.adapters.ca.approve(mailfolder.token_in(request))
    daemon.run_once()
    assert engine.get(order_id).state == "installed"

    clock.set(deadline + timedelta(days=1))
    daemon.run_once()
    assert _reminders(engine, "admin@example.jp") == []
    assert engine.get(order_id).state == "installed"
    dropped = engine.store.conn.execute(
        "SELECT count(*) FROM outbox WHERE order_id = ? AND param = 'approval_reminder' "
        "AND status = 'dropped'", (order_id,)).fetchone()[0]
    assert dropped == 2


def test_reminder_days_are_configurable(tmp_path, clock):
    from support.helpers import make_workspace
    from workflow import config as config_mod
    from workflow.engine import Engine
    config = make_workspace(tmp_path / "ws", {"deadlines.approval_reminder_days": [5]})
    engine = Engine(config_mod.load(config), clock)
    try:
        order_id = _paid_email_order(engine)
        deadline = parse_iso(engine.get(order_id).deadline_at)
        clock.set(deadline - timedelta(days=3))
        Daemon(engine).run_once()
        assert len(_reminders(engine, "admin@example.jp")) == 1
        clock.set(deadline - timedelta(hours=1))
        Daemon(engine).run_once()
        assert len(_reminders(engine, "admin@example.jp")) == 1
    finally:
        engine.close()


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
    ids = [place_and_pay(workspace) for _ in range(3)]
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


def test_one_order_that_cannot_fire_does_not_hold_back_the_others(engine, clock, caplog):
    from workflow.effects import deadlines
    good, bad = _paid_email_order(engine), _paid_email_order(engine)
    with engine.store.immediate() as conn:  # damaged data: an event beyond the row's version
        version = conn.execute("SELECT version FROM orders WHERE id = ?", (bad,)).fetchone()[0]
        conn.execute("INSERT INTO events (order_id, seq, at, trigger, source, dest, actor) "
                     "VALUES (?, ?, '2026-12-01T00:00:00Z', 'x', 'x', 'x', 'test')", (bad, version + 1))
    clock.advance(timedelta(days=10))
    assert deadlines.sweep(engine) == 1
    assert engine.get(good).state == "cancelled"
    assert engine.store.conn.execute("SELECT state FROM orders WHERE id = ?",
                                     (bad,)).fetchone()[0] == "awaiting_approval"
    assert f"order {bad} could not fire" in caplog.text
    assert deadlines.sweep(engine) == 0  # asked again next sweep, still refused, still alone


def test_a_deadline_the_lifecycle_no_longer_allows_is_cleared(engine, clock):
    from workflow.effects import deadlines
    order_id = _paid_email_order(engine)
    with engine.store.immediate() as conn:
        conn.execute("UPDATE orders SET deadline_trigger = 'install' WHERE id = ?", (order_id,))
    clock.advance(timedelta(days=10))
    assert deadlines.sweep(engine) == 0
    order = engine.get(order_id)
    assert order.state == "awaiting_approval" and order.deadline_at is None
