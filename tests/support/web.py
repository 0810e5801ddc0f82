"""`certflow serve` for the tests: a workspace whose [web] points at a free loopback
port, the server as a subprocess, an operator, and Debian's chromium via Playwright."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from support.helpers import CERTFLOW, ROOT, free_port, make_workspace, run_cli

CHROMIUM = "/usr/bin/chromium"
OPERATOR, PASSWORD = "alice", "correct horse battery staple"


def web_settings(port: int) -> dict:
    return {"web.listen": f"127.0.0.1:{port}", "web.public_url": f"http://127.0.0.1:{port}"}


def add_operator(config: Path, name: str = OPERATOR, password: str = PASSWORD):
    return subprocess.run(CERTFLOW + ["--config", str(config), "operator", "add", name],
                          input=password + "\n", capture_output=True, text=True, cwd=str(ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)


def wait_listening(port: int, proc: subprocess.Popen, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"certflow serve exited {proc.returncode}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"certflow serve did not listen on {port}")


@pytest.fixture
def web_workspace(tmp_path) -> Path:
    """A workspace with [web] on a free port and operator alice; returns its config."""
    config = make_workspace(tmp_path / "ws", web_settings(free_port()))
    made = add_operator(config)
    assert made.returncode == 0, made.stderr
    return config


@pytest.fixture
def certflow_web(web_workspace):
    """`certflow serve` running on the workspace; yields its base URL."""
    from workflow import config as config_mod
    url = config_mod.load(web_workspace)["web"]["public_url"]
    port = int(url.rsplit(":", 1)[1])
    proc = subprocess.Popen(CERTFLOW + ["--config", str(web_workspace), "serve"], cwd=str(ROOT),
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium under Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make system-deps` installs it")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium):
    context = chromium.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def mailed_approval_url(config: Path) -> str:
    """The approval link in the newest approval mail of the workspace's mail folder."""
    import re
    from support import mailfolder
    mails = [m for m in mailfolder.messages(config) if "token=" in mailfolder.body(m)]
    assert mails, "no approval mail"
    [url] = re.findall(r"https?://\S+\?token=[A-Za-z0-9_\-]+", mailfolder.body(mails[-1]))
    return url


def place_by_mail(config: Path, cn: str = "www.example.jp") -> str:
    """An order with mail validation, paid and submitted: the approval mail is out."""
    from support.helpers import cli_json, place_args
    order = cli_json(config, "order", "place", *place_args(common_name=cn),
                     "--validation", "email")
    run_cli(config, "order", "pay", order["id"], check=True)
    run_cli(config, "daemon", "--once", check=True)
    return order["id"]
