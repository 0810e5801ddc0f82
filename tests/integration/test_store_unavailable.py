"""A busy store (issue 16 item 21) under a running daemon process: the daemon keeps running
and goes on once the lock is released."""
import json
import os
import subprocess
import sys

from support.helpers import HOLD_LOCK, configure, place_args, run_cli
from workflow import config as config_mod


def test_the_daemon_keeps_running_through_a_busy_store(workspace, tmp_path):
    import signal
    import time
    from support.helpers import CERTFLOW, ROOT
    configure(workspace, {"store.busy_timeout_ms": 300, "daemon.deadline_seconds": 1.0})
    order_id = run_cli(workspace, "order", "place", *place_args(), check=True).stdout.split()[0]
    run_cli(workspace, "order", "pay", order_id, check=True)
    path = config_mod.load(workspace)["store"]["path"]
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    log = tmp_path / "daemon.log"
    with open(log, "w") as err:
        daemon = subprocess.Popen(CERTFLOW + ["--config", str(workspace), "daemon"], stderr=err,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 60
        while "busy" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "busy" in log.read_text() and daemon.poll() is None, log.read_text()
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)
        # the lock is gone: the daemon goes on with the paid order's work
        while time.monotonic() < deadline:
            state = json.loads(run_cli(workspace, "order", "show", order_id, "--json").stdout)["state"]
            if state != "paid":
                break
            time.sleep(0.2)
        assert state != "paid" and daemon.poll() is None
    finally:
        if holder.poll() is None:
            holder.kill()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    assert daemon.returncode == 0 and "Traceback" not in log.read_text()
