"""`certflow doctor`: passes on a fresh workspace, names what is broken otherwise."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.helpers import configure, free_port, run_cli
from support.webserver import json_answer


def doctor(config: Path):
    return run_cli(config, "doctor", timeout=60)


def last_line(proc) -> str:
    return (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1]


def test_passes_on_a_fresh_workspace(workspace):
    proc = doctor(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("config", "database", "master key", "ca", "webroot", "install", "notifier"):
        assert check in proc.stdout
    assert "schema 1" in proc.stdout and "integrity ok" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("doctor: all")


def test_unreachable_smtp_fails_naming_smtp(workspace):
    port = free_port()  # bound and released: nothing listens there
    configure(workspace, {"notify.kind": "smtp", "notify.host": "127.0.0.1", "notify.port": port})
    proc = doctor(workspace)
    assert proc.returncode == 1
    assert last_line(proc) == f"doctor: smtp 127.0.0.1:{port}: connection refused"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_reachable_smtp_passes(workspace, smtp_server):
    configure(workspace, {"notify.kind": "smtp", "notify.host": smtp_server.host,
                          "notify.port": smtp_server.port})
    proc = doctor(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"smtp {smtp_server.host}:{smtp_server.port} answers" in proc.stdout


def test_toml_syntax_error_exits_2_with_file_and_line(workspace):
    text = workspace.read_text().splitlines()
    line = text.index("[effects]") + 2
    text.insert(line - 1, "max_attempts = = 3")
    workspace.write_text("\n".join(text) + "\n")
    proc = doctor(workspace)
    assert proc.returncode == 2
    assert f"{workspace}:{line}:" in proc.stderr
    assert "TOML syntax error" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unknown_key_exits_2_naming_the_key(workspace):
    configure(workspace, {"effects.max_retries": 3})
    proc = doctor(workspace)
    assert proc.returncode == 2
    assert "unknown key effects.max_retries" in proc.stderr and str(workspace) in proc.stderr


def test_damaged_database_fails_naming_the_database(workspace):
    db = workspace.parent / "var" / "data" / "certflow.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not an SQLite database" * 200)
    proc = doctor(workspace)
    assert proc.returncode == 1
    assert last_line(proc).startswith("doctor: database var/data/certflow.db")


def test_missing_master_key_fails_and_says_so(workspace):
    (workspace.parent / "var" / "data" / "master.key").unlink()
    proc = doctor(workspace)
    assert proc.returncode == 1
    assert "master key unreadable" in last_line(proc)
    assert not (workspace.parent / "var" / "data" / "master.key").exists()  # doctor made none


@pytest.fixture
def acme_directory(http_server):
    """A loopback HTTP server answering an ACME directory document."""
    server = http_server({"/dir": json_answer({"newNonce": "x", "newAccount": "x",
                                               "newOrder": "x"})})
    return server.base_url + "/dir"


def test_acme_directory_reachable_or_named(workspace, acme_directory):
    configure(workspace, {"ca.kind": "acme", "ca.directory": acme_directory})
    proc = doctor(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"ACME directory {acme_directory} answers" in proc.stdout

    gone = f"http://127.0.0.1:{free_port()}/dir"
    configure(workspace, {"ca.directory": gone})
    proc = doctor(workspace)
    assert proc.returncode == 1
    assert last_line(proc).startswith(f"doctor: ACME directory {gone} unreachable")
