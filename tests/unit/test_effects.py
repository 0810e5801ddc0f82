"""The outbox dispatcher (issue 4): retries with backoff, on_hold past the limit with the
operator told, resume re-queues the work; refusals and permanent failures; leases of
dead workers taken over, leases of live ones respected."""
from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from support import mailfolder
from support.daemon import mails_of, wait_for
from support.helpers import ORDER, break_installation, cli_json, make_workspace, place_args, run_cli
from workflow import config as config_mod
from workflow.clock import iso, parse_iso
from workflow.effects.daemon import Daemon
from workflow.effects.dispatcher import Dispatcher
from workflow.engine import Engine


@pytest.fixture
def workspace(workspace_both):
    return workspace_both

OPERATOR = "ops@hosting.example"


def outbox(engine, order_id: str, effect: str) -> dict:
    return dict(engine.store.conn.execute(
        "SELECT * FROM outbox WHERE order_id = ? AND effect = ? ORDER BY id DESC",
        (order_id, effect)).fetchone())


@pytest.fixture
def flaky_engine(tmp_path, clock):
    config = make_workspace(tmp_path / "ws", {"effects.max_attempts": 3,
                                              "effects.backoff_seconds": 60})
    engine = Engine(config_mod.load(config), clock)
    yield engine
    engine.close()


def test_transient_failure_is_retried_with_backoff_then_held(flaky_engine, clock):
    engine = flaky_engine
    blocker = break_installation(engine.config.path)
    order = engine.place(**ORDER)
    engine.fire(order.id, "pay")
    daemon = Daemon(engine)
    daemon.run_once()

    assert engine.get(order.id).state == "issued"
    row = outbox(engine, order.id, "install")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "not a directory" in row["last_error"]
    wait = parse_iso(row["next_at"]) - clock.now()
    assert timedelta(seconds=60) <= wait <= timedelta(seconds=75)  # 60 s, up to 25 % jitter

    clock.advance(timedelta(seconds=59))
    daemon.run_once()
    assert outbox(engine, order.id, "install")["attempts"] == 1  # not due yet

    clock.advance(timedelta(seconds=17))
    daemon.run_once()
    row = outbox(engine, order.id, "install")
    assert (row["status"], row["attempts"]) == ("pending", 2)
    wait = parse_iso(row["next_at"]) - clock.now()
    assert timedelta(seconds=120) <= wait <= timedelta(seconds=150)  # doubled
    assert mails_of(engine.config.path, "on_hold") == []

    clock.advance(timedelta(seconds=151))
    daemon.run_once()
    held = engine.get(order.id)
    assert held.state == "on_hold" and held.held_from == "issued"
    assert held.reason.startswith("install failed:") and "not a directory" in held.reason
    assert outbox(engine, order.id, "install")["status"] == "failed"
    [notice] = mails_of(engine.config.path, "on_hold", to=OPERATOR)
    assert order.id in str(notice["Subject"]) + mailfolder.body(notice)

    # repaired, resumed: back to issued, the installation re-queued and done
    blocker.unlink()
    assert engine.fire(order.id, "resume", actor="operator").state == "issued"
    daemon.run_once()
    done = engine.get(order.id)
    assert done.state == "installed" and done.reason is None
    served = Path(engine.config.path).parent / "var/servers/C-1001/www.example.jp/fullchain.pem"
    assert "BEGIN CERTIFICATE" in served.read_text()
    assert [e.trigger for e in engine.history(order.id)][-3:] == ["hold", "resume", "install"]


def test_cli_hold_operator_mail_and_resume(tmp_path):
    config = make_workspace(tmp_path / "ws", {"effects.max_attempts": 3,
                                              "effects.backoff_seconds": 0})
    blocker = break_installation(config)
    order = cli_json(config, "order", "place", *place_args())
    run_cli(config, "order", "pay", order["id"], check=True)
    run_cli(config, "daemon", "--once", check=True)

    held = cli_json(config, "order", "show", order["id"])
    assert held["state"] == "on_hold"
    assert "install" in held["reason"] and "not a directory" in held["reason"]
    [notice] = mails_of(config, "on_hold", to=OPERATOR)
    assert "not a directory" in mailfolder.body(notice)
    status = cli_json(config, "status")
    assert [(f["effect"], f["attempts"]) for f in status["failed_effects"]] == [("install", 3)]

    blocker.unlink()
    run_cli(config, "order", "resume", order["id"], check=True)
    run_cli(config, "daemon", "--once", check=True)
    assert cli_json(config, "order", "show", order["id"])["state"] == "installed"
    assert (config.parent / "var/servers/C-1001/www.example.jp/cert.pem").exists()
    assert len(mails_of(config, "on_hold", to=OPERATOR)) == 1  # resume does not repeat it


def test_resume_refused_unless_held(workspace):
    order = cli_json(workspace, "order", "place", *place_args())
    refused = run_cli(workspace, "order", "resume", order["id"])
    assert refused.returncode == 2 and "ordered" in refused.stderr


def test_ca_refusal_rejects_the_order_with_its_reason(engine):
    order = engine.place(**{**ORDER, "validation": "email"})  # waits for the approver
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    application_id = engine.get(order.id).data["application_id"]
    engine.adapters.ca.cancel(application_id)  # the CA withdrew it: every poll now refuses
    engine.poll_now(application_id)
    Daemon(engine).run_once()
    rejected = engine.get(order.id)
    assert rejected.state == "rejected"
    assert application_id in rejected.reason and "cancelled" in rejected.reason
    assert mails_of(engine.config.path, "rejected", to=ORDER["email"])


def test_permanent_failure_holds_at_once(tmp_path, clock):
    # WHOIS-based mail allowed (not publicly trusted) but no WHOIS/RDAP server configured
    config = make_workspace(tmp_path / "ws", {"policy.publicly_trusted": False})
    engine = Engine(config_mod.load(config), clock)
    try:
        order = engine.place(**{**ORDER, "validation": "email-whois"})
        engine.fire(order.id, "pay")
        Daemon(engine).run_once()
        held = engine.get(order.id)
        assert held.state == "on_hold" and held.held_from == "submitted"
        assert "contacts" in held.reason
        row = outbox(engine, order.id, "submit_ca")
        assert (row["status"], row["attempts"]) == ("failed", 1)
    finally:
        engine.close()


# --- leases -------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lease(engine, row_id: int, owner: str) -> None:
    until = iso(engine.now() + timedelta(minutes=5))
    with engine.store.immediate() as conn:
        conn.execute("UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?",
                     (owner, until, row_id))


def test_lease_of_a_dead_worker_is_taken_over_at_once(engine):
    from workflow.effects.dispatcher import HOST
    engine.place(**ORDER)
    [row] = Dispatcher(engine).claim()
    _lease(engine, row["id"], f"{HOST}:{_dead_pid()}:deadbeef")
    [taken] = Dispatcher(engine).claim()
    assert taken["id"] == row["id"]


def test_lease_of_a_killed_unreaped_worker_is_taken_over(engine):
    from workflow.effects.dispatcher import HOST
    engine.place(**ORDER)
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        [row] = Dispatcher(engine).claim()
        _lease(engine, row["id"], f"{HOST}:{zombie.pid}:deadbeef")
        assert Dispatcher(engine).claim() == []  # alive: its lease holds
        zombie.send_signal(signal.SIGKILL)
        # killed but not reaped: still in the process table, kill(pid, 0) still succeeds
        wait_for(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                 == "Z", what="the killed process to become a zombie")
        [taken] = Dispatcher(engine).claim()
        assert taken["id"] == row["id"]
    finally:
        zombie.kill()
        zombie.wait()


def test_lease_of_a_live_worker_elsewhere_is_respected_until_it_lapses(engine, clock):
    engine.place(**ORDER)
    [row] = Dispatcher(engine).claim()
    _lease(engine, row["id"], "other-host:4242:cafe")
    assert Dispatcher(engine).claim() == []
    clock.advance(timedelta(minutes=5))
    [taken] = Dispatcher(engine).claim()
    assert taken["id"] == row["id"]


def test_effect_no_longer_needed_is_dropped_not_run(engine):
    order = engine.place(**ORDER)
    engine.fire(order.id, "pay")
    engine.fire(order.id, "cancel", reason="customer changed their mind")
    Daemon(engine).run_once()
    make_csr = outbox(engine, order.id, "make_csr")
    assert make_csr["status"] == "dropped" and "cancelled" in make_csr["last_error"]
    assert engine.get(order.id).state == "cancelled"
    assert engine.store.conn.execute("SELECT count(*) FROM keys").fetchone()[0] == 0


def test_an_approval_is_looked_at_on_the_next_pass_even_after_the_clock_stepped_back(engine, clock):
    """``ca approve`` makes the poll due since it was queued, not since "now": a wall
    clock stepped back between the approval and the next pass still finds it due."""
    order = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    application_id = engine.get(order.id).data["application_id"]
    [mail] = mails_of(engine.config.path, "approval_request")
    token = mailfolder.token_in(mail)
    clock.advance(timedelta(seconds=30))
    engine.adapters.ca.approve(token)
    engine.poll_now(application_id)
    clock.advance(timedelta(seconds=-20))  # NTP stepped the clock back
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "installed"
