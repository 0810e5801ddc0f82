"""The PostgreSQL store through the CLI: `store copy` from SQLite (verified, refused into a
non-empty database), doctor, an unreachable server (exit 75), and the dialect seam."""
from __future__ import annotations

import shutil

import pytest

from support.helpers import cli_json, configure, doctor, last_line, run_cli
from support.postgres import migrate, sql
from workflow.store.dialect import postgres


def _views(config, ids):
    return {i: (cli_json(config, "order", "show", i), cli_json(config, "order", "history", i))
            for i in ids}


def test_store_copy_moves_every_table_verified_then_refuses_a_full_target(population, pg_url,
                                                                            tmp_path):
    proc = run_cli(population.config, "store", "copy", "--to", pg_url, "--json")
    assert proc.returncode == 0, proc.stderr
    import json
    report = json.loads(proc.stdout)
    assert report["verified_orders"] == len(population.all)
    assert set(report["rows"]) >= {"orders", "events", "outbox", "certificates", "keys"}
    for table, n in report["rows"].items():
        assert population.sql(f"SELECT count(*) FROM {table}")[0][0] == n
        assert sql(pg_url, f"SELECT count(*) FROM {table}")[0][0] == n

    # the same workspace on the copy: every order and history reads the same, sealed keys
    # included (the byte strings are equal), and replay --verify passes
    moved = tmp_path / "moved"
    shutil.copytree(population.config.parent, moved)
    configure(moved / "config.toml", {"store.url": pg_url})
    assert _views(moved / "config.toml", population.all) == _views(population.config, population.all)
    assert sorted(sql(pg_url, "SELECT order_id, sealed FROM keys")) == \
        sorted(population.sql("SELECT order_id, sealed FROM keys"))
    assert run_cli(moved / "config.toml", "replay", "--all", "--verify").returncode == 0
    order = cli_json(moved / "config.toml", "order", "place", "--cn", "www.after.example.jp",
                     "--org", "Example Corp.", "--locality", "Shinjuku-ku", "--prefecture",
                     "Tokyo", "--country", "JP", "--plan", "basic", "--contract", "C-1001",
                     "--email", "owner@example.jp")
    assert order["state"] == "ordered"  # identities continue after the copied rows

    again = run_cli(population.config, "store", "copy", "--to", pg_url)
    assert again.returncode == 2
    assert "is not empty (" in last_line(again)
    assert sql(pg_url, "SELECT count(*) FROM orders")[0][0] == len(population.all) + 1


def test_store_copy_to_an_unreachable_server_exits_75(workspace, closed_port):
    proc = run_cli(workspace, "store", "copy", "--to",
                   f"postgresql://certflow@127.0.0.1:{closed_port}/certflow")
    assert proc.returncode == 75, proc.stderr
    assert "unreachable" in last_line(proc)


def test_commands_on_an_unreachable_server_exit_75_and_doctor_names_it(workspace, closed_port):
    configure(workspace, {"store.url": f"postgresql://certflow:s3cret@127.0.0.1:{closed_port}/x"})
    proc = run_cli(workspace, "order", "list")
    assert proc.returncode == 75
    assert "unreachable" in last_line(proc) and "s3cret" not in proc.stderr
    checked = doctor(workspace)
    assert checked.returncode == 1
    assert "unreachable" in last_line(checked) and "s3cret" not in checked.stdout + checked.stderr


def test_doctor_reports_server_and_schema_version(workspace, pg_url):
    migrate(pg_url)
    configure(workspace, {"store.url": pg_url})
    checked = doctor(workspace)
    line = next(ln for ln in checked.stdout.splitlines() if "PostgreSQL" in ln)
    assert "schema 1 (001_initial)" in line or "schema " in line
    assert "PostgreSQL 1" in line and "0 orders" in line


def test_the_dialect_translates_the_shared_statements_and_refuses_what_it_cannot():
    assert postgres("SELECT id FROM orders WHERE json_extract(data, '$.application_id') = ?") == \
        "SELECT id FROM orders WHERE (data::jsonb #>> '{application_id}') = %s"
    assert postgres("INSERT OR IGNORE INTO keys VALUES (?, ?)") == \
        "INSERT INTO keys VALUES (%s, %s) ON CONFLICT DO NOTHING"
    assert postgres("SELECT 1 WHERE x LIKE '%a'") == "SELECT 1 WHERE x LIKE '%%a'"
    with pytest.raises(ValueError, match="INSERT OR REPLACE"):
        postgres("INSERT OR REPLACE INTO certificates VALUES (?)")


def test_a_lost_connection_is_unavailable_then_the_next_command_reconnects(workspace, pg_url):
    from support.helpers import ORDER
    from workflow import config as config_mod
    from workflow.engine import Engine
    from workflow.errors import StoreUnavailable
    migrate(pg_url)
    configure(workspace, {"store.url": pg_url})
    engine = Engine(config_mod.load(workspace))
    try:
        first = engine.place(**ORDER)
        kill = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(StoreUnavailable) as lost:
            with engine.command() as tx:
                tx.load_order(first.id)
                sql(pg_url, kill)  # the server drops our connection mid-transaction
                tx.clear_deadline(first.id)
        assert lost.value.condition == "unreachable"
        sql(pg_url, kill)  # and the idle ones in the pool
        assert engine.fire(first.id, "pay").state == "paid"  # a new connection, nothing lost
        assert [e.trigger for e in engine.history(first.id)] == ["place", "pay"]
    finally:
        engine.close()


def test_a_daemon_is_woken_by_notify_not_by_its_poll(workspace, pg_url, daemons):
    """The dispatcher's poll is an hour: only the NOTIFY of the paying process's commit
    can make the daemon run the order's effects within the wait."""
    from support.daemon import wait_for
    migrate(pg_url)
    configure(workspace, {"store.url": pg_url, "daemon.dispatch_seconds": 3600})
    daemon = daemons(workspace)
    wait_for(lambda: sql(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE "
                                 "query LIKE 'LISTEN %'")[0][0] == 1, what="the daemon to LISTEN")
    order = cli_json(workspace, "order", "place", "--cn", "www.woken.example.jp", "--org",
                     "Example Corp.", "--locality", "Shinjuku-ku", "--prefecture", "Tokyo",
                     "--country", "JP", "--plan", "basic", "--contract", "C-1001",
                     "--email", "owner@example.jp")
    run_cli(workspace, "order", "pay", order["id"], check=True)
    wait_for(lambda: cli_json(workspace, "order", "show", order["id"])["state"] == "installed",
             timeout=120, interval=0.5, what="the woken daemon to install the order")
    assert daemon.terminate() == 0
