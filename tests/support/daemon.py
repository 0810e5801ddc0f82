"""Real ``certflow daemon`` processes for tests, and readers of what they leave behind
(mail files, CA applications, installed files)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from support import mailfolder
from support.helpers import CERTFLOW, ROOT, cli_json

#: generous: the test box may be a loaded 2-core machine
TIMEOUT = 90.0


def wait_for(predicate, timeout: float = TIMEOUT, what: str = "condition", interval: float = 0.05):
    """Poll ``predicate`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class DaemonProcess:
    """One long-running ``certflow -v daemon`` with its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "DaemonProcess":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("CERTFLOW_DEBUG", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(CERTFLOW + ["--config", str(self.config), "-v", "daemon"],
                                         stdout=log, stderr=log, env=env, cwd=str(ROOT))
        if wait:
            wait_for(lambda: "lease owner " in self.log_text() and self.started_pid() == self.pid,
                     what="the daemon to start")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def started_pid(self) -> int | None:
        """The pid in the newest 'daemon started (lease owner host:pid:...)' line."""
        lines = [ln for ln in self.log_text().splitlines() if "lease owner " in ln]
        if not lines:
            return None
        return int(lines[-1].split("lease owner ", 1)[1].split(":")[1])

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Finalizer: never leave a process behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def daemons(tmp_path):
    """Start daemons with ``daemons(config)``; all are killed at the end of the test."""
    started: list[DaemonProcess] = []

    def start(config: Path, wait: bool = True) -> DaemonProcess:
        d = DaemonProcess(config, tmp_path / f"daemon-{len(started)}.log")
        started.append(d)
        return d.start(wait)

    yield start
    for d in started:
        d.stop()


def pay_orders(engine, n: int, host: str = "www.shop{i}.example.jp") -> list[str]:
    """``n`` paid orders through the library, each for its own host (``host`` with ``{i}``)."""
    from support.helpers import ORDER
    ids = []
    for i in range(n):
        order = engine.place(**{**ORDER, "common_name": host.format(i=i)})
        engine.fire(order.id, "pay")
        ids.append(order.id)
    return ids


# --- what the work left behind -------------------------------------------------------


def mails_of(config: Path, template: str, to: str | None = None) -> list:
    """Messages of one template in the workspace's mail folder (optionally to one address)."""
    return [m for m in mailfolder.messages(config) if m["X-Certflow-Template"] == template
            and (to is None or m["To"] == to)]


def applications_per_order(config: Path) -> Counter:
    """How many applications the CA saw for each order (``ca applications --json``)."""
    return Counter(a["order_id"] for a in cli_json(config, "ca", "applications"))
