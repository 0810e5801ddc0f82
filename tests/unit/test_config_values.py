"""Issue 16 items 15, 18, 19, 20 and 23 at the config edge, through the real CLI: a bad
value exits 2 with one line naming the key, and nothing is written."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.helpers import add_contract, configure, place_args, run_cli


def db_rows(config: Path) -> int:
    import sqlite3
    db = config.parent / "var/data/certflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]


def refused(config: Path, key: str) -> str:
    before = db_rows(config)
    proc = run_cli(config, "order", "place", *place_args())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert key in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert db_rows(config) == before  # nothing written
    return proc.stderr


@pytest.mark.parametrize("settings, key", [
    ({"keys.algorithm": "rsa1024"}, "keys.algorithm"),
    ({"validation.default": "foo"}, "validation.default"),
    ({"notify.operator": "ops"}, "notify.operator"),
    ({"ca.poll_seconds": -5}, "ca.poll_seconds"),
    ({"daemon.dispatch_seconds": -1}, "daemon.dispatch_seconds"),
    ({"daemon.dispatch_seconds": 0}, "daemon.dispatch_seconds"),
    ({"notify.kind": "smtp", "notify.port": 70000}, "notify.port"),
    ({"ca.connect_to": "nowhere"}, "ca.connect_to"),
    ({"contacts.rdap": "ftp://rdap.example/"}, "contacts.rdap"),
    ({"renewal.at": 1.5}, "renewal.at"),
    ({"deadlines.approval_reminder_days": [3, -1]}, "deadlines.approval_reminder_days"),
    ({"store.synchronous": "sometimes"}, "store.synchronous"),
])
def test_a_value_out_of_its_declared_range_is_refused_naming_the_key(workspace, settings, key):
    configure(workspace, settings)
    refused(workspace, key)


@pytest.mark.parametrize("cid", ["../../x", "/abs", "a/b", "..", ".hidden", "x y", ""])
def test_a_contract_id_that_is_not_a_plain_name_is_refused(workspace, cid):
    add_contract(workspace, cid, plan="basic")
    message = refused(workspace, "contracts.")
    assert "contract id" in message


def test_a_store_path_under_a_regular_file_exits_2_naming_store_path(workspace, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    configure(workspace, {"store.path": str(blocker / "certflow.db")})
    refused(workspace, "store.path")


def paid_order(config: Path) -> str:
    order_id = run_cli(config, "order", "place", *place_args(), check=True).stdout.split()[0]
    run_cli(config, "order", "pay", order_id, check=True)
    return order_id


def state_of(config: Path, order_id: str) -> str:
    return run_cli(config, "order", "show", order_id, check=True).stdout


def test_a_mistyped_master_key_is_refused_by_the_daemon_and_never_made(workspace):
    order_id = paid_order(workspace)
    before = state_of(workspace, order_id)
    configure(workspace, {"keys.master_key": "var/data/mistyped.key"})
    env = {k: v for k, v in os.environ.items() if k != "CERTFLOW_MASTER_KEY"}
    proc = run_cli(workspace, "daemon", "--once", env=env)
    assert proc.returncode == 2 and "keys.master_key" in proc.stderr, proc.stderr
    assert not (workspace.parent / "var/data/mistyped.key").exists()  # not minted
    assert state_of(workspace, order_id) == before  # nothing moved


def test_a_master_key_that_does_not_open_the_sealed_keys_is_refused(workspace):
    from adapters.crypto.keys import KeyVault
    order_id = paid_order(workspace)
    before = state_of(workspace, order_id)
    KeyVault.create_file(str(workspace.parent / "var/data/other.key"))
    configure(workspace, {"keys.master_key": "var/data/other.key"})
    proc = run_cli(workspace, "daemon", "--once")
    assert proc.returncode == 2 and "keys.master_key" in proc.stderr, proc.stderr
    assert state_of(workspace, order_id) == before


def test_doctor_never_prints_credentials_of_urls(workspace):
    configure(workspace, {"notify.kind": "webhook", "notify.secret": "s3cr3t-hmac",
                          "notify.url": "http://hookuser:hookpass@127.0.0.1:9/hook?api_key=k3y"})
    proc = run_cli(workspace, "doctor")
    out = proc.stdout + proc.stderr
    assert "127.0.0.1:9/hook" in out
    for secret in ("hookpass", "hookuser", "k3y", "s3cr3t-hmac"):
        assert secret not in out


def test_doctor_never_prints_the_acme_directory_password(workspace):
    configure(workspace, {"ca.kind": "acme", "ca.directory": "https://acmeuser:acmepass@127.0.0.1:9/dir"})
    proc = run_cli(workspace, "doctor")
    out = proc.stdout + proc.stderr
    assert "127.0.0.1:9/dir" in out and "acmepass" not in out and "acmeuser" not in out


def test_removing_a_contract_with_orders_in_flight_holds_them_naming_it(workspace):
    import json
    import re
    order_id = paid_order(workspace)
    text = workspace.read_text()
    workspace.write_text(re.sub(r'\[contracts\."C-1001"\]\nplan = "basic"\nstatus = "active"\n', "",
                                text))
    run_cli(workspace, "daemon", "--once", check=True)
    shown = json.loads(run_cli(workspace, "order", "show", order_id, "--json", check=True).stdout)
    assert shown["state"] == "on_hold", shown
    assert "C-1001" in shown["reason"] and "KeyError" not in shown["reason"]
    doctor = run_cli(workspace, "doctor")
    assert "1 in flight on contract 'C-1001'" in doctor.stdout
