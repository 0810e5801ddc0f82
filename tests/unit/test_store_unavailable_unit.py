"""A busy, full or read-only store (issue 16 items 21, 25, 26) through the CLI, without a
daemon: read-only commands never need the write lock; a write that cannot be made is one
line and exit 75, nothing half-written; the files are private whatever the umask."""
import json
import os
import stat
import subprocess
import sys

import pytest

from support.helpers import HOLD_LOCK, ORDER, configure, place_args, run_cli
from workflow import config as config_mod
from workflow.engine import Engine
from workflow.errors import StoreUnavailable


@pytest.fixture
def db_locked(workspace):
    """Another process holds BEGIN IMMEDIATE on the workspace's store."""
    configure(workspace, {"store.busy_timeout_ms": 300})
    order_id = run_cli(workspace, "order", "place", *place_args(), check=True).stdout.split()[0]
    path = config_mod.load(workspace)["store"]["path"]
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    try:
        yield workspace, order_id
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)


def test_read_only_commands_never_wait_for_the_write_lock(db_locked, tmp_path):
    config, order_id = db_locked
    for args in (["status", "--json"], ["order", "list", "--json"],
                 ["order", "show", order_id, "--json"], ["order", "history", order_id, "--json"],
                 ["replay", "--all", "--json"], ["export", str(tmp_path / "out.jsonl")]):
        proc = run_cli(config, *args)
        assert proc.returncode == 0, (args, proc.stderr)
    assert json.loads(run_cli(config, "order", "show", order_id, "--json").stdout)["state"] == "ordered"


def test_a_write_on_a_busy_store_exits_75_with_one_line(db_locked):
    config, order_id = db_locked
    proc = run_cli(config, "order", "pay", order_id)
    assert proc.returncode == 75, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "busy" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli(config, "order", "place", *place_args())
    assert proc.returncode == 75 and "busy" in proc.stderr


def test_after_the_lock_is_released_the_write_goes_through(db_locked):
    config, order_id = db_locked
    assert run_cli(config, "order", "pay", order_id).returncode == 75
    # the fixture releases the lock at teardown; here: state unchanged, nothing half-written
    assert json.loads(run_cli(config, "order", "history", order_id, "--json").stdout)[-1]["dest"] \
        == "ordered"


def test_full_store_is_unavailable_and_nothing_is_written(engine):
    o = engine.place(**ORDER)
    conn = engine.store.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    written = 0
    with pytest.raises(StoreUnavailable) as err:
        for i in range(200):  # until a page more is needed (each order its own site)
            engine.place(**{**ORDER, "common_name": f"s{i}.example.jp"})
            written += 1
    assert err.value.condition == "full" and "full" in err.value.message
    assert len(engine.list()) == 1 + written
    assert engine.get(o.id).state == "ordered"


def test_read_only_store_is_unavailable_and_nothing_is_written(engine):
    """``query_only`` makes SQLite answer SQLITE_READONLY the way a read-only file does
    (tests run as root, for whom a chmod does not make a file read-only)."""
    o = engine.place(**ORDER)
    engine.store.conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreUnavailable) as err:
        engine.fire(o.id, "pay")
    assert err.value.condition == "read-only"
    engine.store.conn.execute("PRAGMA query_only = OFF")
    assert engine.get(o.id).state == "ordered" and len(engine.history(o.id)) == 1


def test_store_files_are_created_0600_whatever_the_umask(workspace, clock):
    old = os.umask(0o022)
    try:
        engine = Engine(config_mod.load(workspace), clock)
        engine.place(**ORDER)
        path = engine.store.path
        modes = {suffix: stat.S_IMODE(os.stat(path + suffix).st_mode)
                 for suffix in ("", "-wal", "-shm") if os.path.exists(path + suffix)}
        engine.close()
    finally:
        os.umask(old)
    assert set(modes) >= {"", "-wal", "-shm"} and set(modes.values()) == {0o600}, modes
