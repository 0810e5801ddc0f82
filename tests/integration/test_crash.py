"""Crash safety (issue 4): a real daemon killed with SIGKILL mid-work, and two daemons on
one database, never lose an order nor apply anything twice; with many workers each
(issue 18), so several effects are in flight when the kill lands."""
from __future__ import annotations

import email
import email.policy
import hashlib
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from support.daemon import applications_per_order, pay_orders, wait_for
from support.helpers import ORDER, cli_json, configure, run_cli
from support.postgres import store_conn
from workflow import config as config_mod
from workflow.engine import Engine

#: what every order of these tests mails its customer, once each
CUSTOMER_MAILS = {"order_received", "work_started", "approval_pending", "installed"}


def paid_orders(config: Path, n: int) -> list[str]:
    """``n`` paid orders, each for its own host, placed through the library."""
    engine = Engine(config_mod.load(config))
    try:
        return pay_orders(engine, n)
    finally:
        engine.close()


@pytest.fixture
def workspace(workspace_both):
    return workspace_both


def db(config: Path):
    return store_conn(config)


def progress(config: Path) -> int:
    with db(config) as conn:
        return conn.execute("SELECT count(*) FROM outbox WHERE status != 'pending'").fetchone()[0]


def delivered(config: Path) -> list:
    """The messages in the mail folder. Dot files are the folder notifier's temporary files:
    a writer killed between writing and renaming leaves one behind, never a message."""
    folder = Path(config).parent / "var/mail"
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(folder.glob("*.eml")) if not p.name.startswith(".")]


def unfinished(config: Path) -> int:
    """Orders not installed yet plus effects not run yet."""
    with db(config) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM orders WHERE state != 'installed') + "
                            "(SELECT count(*) FROM outbox WHERE status = 'pending')").fetchone()[0]


def pending(config: Path) -> int:
    with db(config) as conn:
        return conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]


def assert_each_applied_once(config: Path, ids: list[str]) -> None:
    """Installed, one CA application, one install event, a gapless history, one mail
    per message, and the installed certificate is the order's."""
    orders = {o["id"]: o for o in cli_json(config, "order", "list")}
    assert {orders[i]["state"] for i in ids} == {"installed"}, \
        Counter(orders[i]["state"] for i in ids)
    applications = applications_per_order(config)
    assert {i: applications[i] for i in ids} == {i: 1 for i in ids}
    with db(config) as conn:
        for order_id in ids:
            history = conn.execute("SELECT seq, trigger FROM events WHERE order_id = ? ORDER BY seq",
                                   (order_id,)).fetchall()
            assert [r["seq"] for r in history] == list(range(1, len(history) + 1))
            assert [r["trigger"] for r in history] == \
                ["place", "pay", "submit", "ca_accept", "issue", "install"]
    sent = Counter((m["X-Certflow-Order"], m["X-Certflow-Template"]) for m in delivered(config))
    for order_id in ids:
        assert {t for (o, t) in sent if o == order_id} == CUSTOMER_MAILS
    assert [k for k, n in sent.items() if n > 1] == []
    for order_id in ids:
        cn = orders[order_id]["common_name"]
        pem = (Path(config).parent / f"var/servers/C-1001/{cn}/cert.pem").read_bytes()
        der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
        assert hashlib.sha256(der).hexdigest() == orders[order_id]["certificate"]["sha256"]


def test_daemon_killed_four_times_mid_work_loses_and_repeats_nothing(workspace, daemons):
    configure(workspace, {"daemon.dispatch_seconds": 0.2, "effects.workers": 16})
    ids = paid_orders(workspace, 20)
    rng = random.Random()
    kills, orphaned = 0, []
    # at least four kills; keep going until one of them left claimed work behind
    while (kills < 4 or (not orphaned and kills < 12)) and pending(workspace):
        before = progress(workspace)
        daemon = daemons(workspace)
        wait_for(lambda: progress(workspace) > before, what="the daemon to make progress")
        time.sleep(rng.uniform(0.0, 0.4))
        daemon.kill9()
        kills += 1
        with db(workspace) as conn:
            orphaned += [r["id"] for r in conn.execute(
                "SELECT id FROM outbox WHERE status = 'pending' AND lease_owner LIKE ?",
                (f"%:{daemon.pid}:%",))]
    assert kills >= 4, "the work was done before the fourth kill"
    assert orphaned, "no kill landed while the daemon held claimed work"

    # leases of the dead processes are not waited out (5 minutes): taken over at once
    for _ in range(3):
        run_cli(workspace, "daemon", "--once", check=True)
        if not pending(workspace):
            break
    with db(workspace) as conn:
        left = conn.execute(f"SELECT count(*) FROM outbox WHERE status = 'pending' AND id IN "
                            f"({', '.join('?' * len(orphaned))})", orphaned).fetchone()[0]
    assert left == 0
    assert_each_applied_once(workspace, ids)


def test_two_daemons_on_one_database_never_apply_an_effect_twice(workspace, daemons):
    configure(workspace, {"daemon.dispatch_seconds": 0.2, "effects.workers": 16})
    first, second = daemons(workspace), daemons(workspace)
    ids = paid_orders(workspace, 16)
    wait_for(lambda: not unfinished(workspace), what="both daemons to install every order")
    assert first.terminate() == 0 and second.terminate() == 0
    # busy passes are normal, not a warning each (APScheduler's "skipped: maximum number
    # of running instances reached" came twice a second while a drain ran)
    assert "skipped" not in first.log_text() + second.log_text()
    assert_each_applied_once(workspace, ids)
    with db(workspace) as conn:
        assert conn.execute("SELECT count(*) FROM outbox WHERE status != 'done'").fetchone()[0] == 0


def test_three_daemons_on_postgresql_200_orders_one_killed_halfway(tmp_path, pg_url, daemons):
    """Several hosts' daemons on one PostgreSQL: every order installed, one CA application
    each, no mail twice, although one daemon is killed -9 in the middle of the work."""
    from support.helpers import make_workspace
    from support.postgres import migrate
    migrate(pg_url)
    config = make_workspace(tmp_path / "ws", {"store.url": pg_url, "daemon.dispatch_seconds": 0.5})
    ids = paid_orders(config, 200)
    running = [daemons(config) for _ in range(3)]
    def installed() -> int:
        with db(config) as conn:
            return conn.execute("SELECT count(*) FROM orders WHERE state = 'installed'").fetchone()[0]
    wait_for(lambda: installed() >= 100, timeout=900, interval=0.5, what="half the orders installed")
    victim = running.pop(1)
    victim.kill9()
    wait_for(lambda: not unfinished(config), timeout=900, interval=0.5,
             what="the two left to finish every order")
    assert [d.terminate() for d in running] == [0, 0]
    assert_each_applied_once(config, ids)
    with db(config) as conn:
        assert conn.execute("SELECT count(*) FROM outbox WHERE status != 'done'").fetchone()[0] == 0
