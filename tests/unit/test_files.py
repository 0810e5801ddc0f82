"""Files whatever the umask (issue 16 #21), no temp file outliving a kill -9 (#22), and
input files read with a cap (#24)."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from adapters.base import BadInput
from adapters.common import files
from support.helpers import ORDER, make_workspace
from support.inproc import invoke, snapshot
from workflow import config as config_mod
from workflow.effects.daemon import Daemon
from workflow.engine import Engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _install_one(config: Path, clock) -> Engine:
    """The embedded defaults' whole path for one order: mail, local CA, installation."""
    engine = Engine(config_mod.load(config), clock)
    order = engine.place(**ORDER)
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "installed"
    return engine


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# --- #21: modes do not depend on the umask ------------------------------------------

def test_init_creates_config_toml_0600_under_umask_022(tmp_path, umask_022):
    config = make_workspace(tmp_path / "ws")
    assert _mode(config) == 0o600
    res = invoke(tmp_path / "x" / "config.toml", "init", str(tmp_path / "other"))
    assert res.exit_code == 0, res.describe()
    assert _mode(tmp_path / "other" / "config.toml") == 0o600
    assert not list((tmp_path / "other").glob(".config-*"))  # no temporary file left


def test_served_files_stay_readable_and_the_key_private_under_umask_022(tmp_path, clock,
                                                                        umask_022):
    config = make_workspace(tmp_path / "ws")
    engine = _install_one(config, clock)
    installed = next((tmp_path / "ws" / "var" / "servers").rglob("privkey.pem")).parent
    assert {p.name: _mode(p) for p in installed.iterdir()} == {
        "cert.pem": 0o644, "chain.pem": 0o644, "fullchain.pem": 0o644, "privkey.pem": 0o600}
    assert all(_mode(p) == 0o600 for p in (tmp_path / "ws" / "var" / "mail").glob("*.eml"))
    engine.close()


# --- #22: temp files are 0600 from the first byte and swept after a kill -9 ----------

def test_write_atomic_keeps_the_temp_file_0600_until_complete(tmp_path, monkeypatch, umask_022):
    seen = []
    real_fdopen = os.fdopen

    class Watching:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            self.handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def write(self, data):
            seen.append(stat.S_IMODE(os.fstat(self.handle.fileno()).st_mode))
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: Watching(real_fdopen(fd, mode)))
    files.write_atomic(tmp_path / "cert.pem", b"certificate", 0o644)
    assert seen == [0o600]
    assert _mode(tmp_path / "cert.pem") == 0o644


def _stale(path: Path, seconds: float = 120) -> Path:
    path.write_bytes(b"left by a killed process")
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def test_stale_temp_files_are_swept_at_the_next_start(tmp_path, clock):
    config = make_workspace(tmp_path / "ws")
    mail = tmp_path / "ws" / "var" / "mail"
    mail.mkdir(parents=True, exist_ok=True)
    stale_mail = _stale(mail / ".tmp-dead1234.tmp")
    fresh_mail = _stale(mail / ".tmp-live5678.tmp", seconds=1)   # a live writer's
    foreign = _stale(mail / "notes.tmp")                            # not ours
    server = tmp_path / "ws" / "var" / "servers" / "C-1001" / "www.example.jp"
    server.mkdir(parents=True)
    stale_cert = _stale(server / ".certflow-dead.tmp")

    engine = _install_one(config, clock)
    assert not stale_mail.exists() and not stale_cert.exists()
    assert fresh_mail.exists() and foreign.exists()
    assert not list(server.glob(".certflow-*"))
    engine.close()


def test_sweep_touches_only_our_prefix_and_regular_files(tmp_path):
    ours = _stale(tmp_path / ".tmp-a.tmp")
    (tmp_path / ".tmp-dir").mkdir()
    os.utime(tmp_path / ".tmp-dir", (0, 0))
    other = _stale(tmp_path / "a.eml")
    assert files.sweep_stale_temps(tmp_path, ".tmp-") == [str(ours)]
    assert other.exists() and (tmp_path / ".tmp-dir").is_dir()
    assert files.sweep_stale_temps(tmp_path / "missing", ".tmp-") == []


# --- #24: input files are read with a cap -------------------------------------------

def test_read_capped_refuses_an_endless_file_naming_file_and_cap():
    with pytest.raises(BadInput) as caught:
        files.read_capped("/dev/zero", 1 << 20, "csr")
    assert caught.value.field == "csr"
    assert caught.value.message == ("csr file /dev/zero is larger than 1 MiB "
                                    "(the limit for a csr file)")


def test_order_csr_and_issue_refuse_dev_zero_with_exit_2(engine, workspace):
    order = engine.place(**ORDER)
    before = snapshot(workspace)
    for args, field in ((("order", "csr", order.id, "/dev/zero"), "csr"),
                        (("order", "issue", order.id, "/dev/zero"), "certificate"),
                        (("order", "issue", order.id, __file__, "--chain", "/dev/zero"), "chain")):
        res = invoke(workspace, *args)
        assert res.exit_code == 2, res.describe()
        assert f"{field} file /dev/zero is larger than 1 MiB" in res.stderr
    assert snapshot(workspace) == before


def test_read_lines_capped_refuses_a_long_line_and_a_large_file(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"ab\n" + b"x" * 20 + b"\n")
    with pytest.raises(BadInput, match=r"f.jsonl:2: line longer than 10 bytes"):
        list(files.read_lines_capped(path, 10, 100, "file"))
    with pytest.raises(BadInput, match="larger than 16 bytes"):
        list(files.read_lines_capped(path, 100, 16, "file"))
    assert list(files.read_lines_capped(path, 100, 100, "file")) == [(1, "ab"), (2, "x" * 20)]


def test_a_daemon_start_sweeps_every_install_directory_not_only_the_next_one(tmp_path, clock):
    config = make_workspace(tmp_path / "ws")
    engine = Engine(config_mod.load(config), clock)
    target = engine.config.contracts["C-1001"]["targets"][0]["path"]
    other_site = Path(target) / "shop.example.jp"   # no order will install here
    other_site.mkdir(parents=True)
    stale = _stale(other_site / ".certflow-dead.tmp")
    live = other_site / "cert.pem"
    live.write_text("the site's certificate")
    Daemon(engine).run_once()                          # nothing due: only the start's sweep
    assert not stale.exists() and live.exists()
    engine.close()


def test_config_dev_zero_is_refused_with_exit_2_naming_the_cap(tmp_path):
    res = invoke(Path("/dev/zero"), "status")
    assert res.exit_code == 2 and "larger than 1 MiB" in res.stderr
