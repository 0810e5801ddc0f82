"""`certflow doctor` without a server: passes on a fresh workspace, names a broken config,
database, master key or an SMTP port where nothing listens."""
from __future__ import annotations

from pathlib import Path

from support.helpers import configure, doctor, free_port, last_line


def test_passes_on_a_fresh_workspace(workspace):
    proc = doctor(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("config", "database", "master key", "ca", "webroot", "install", "notifier"):
        assert check in proc.stdout
    from workflow.store.schema import SCHEMA_VERSION
    assert f"schema {SCHEMA_VERSION}" in proc.stdout and "integrity ok" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("doctor: all")


def test_unreachable_smtp_fails_naming_smtp(workspace):
    port = free_port()  # bound and released: nothing listens there
    configure(workspace, {"notify.kind": "smtp", "notify.host": "127.0.0.1", "notify.port": port})
    proc = doctor(workspace)
    assert proc.returncode == 1
    assert last_line(proc) == f"doctor: smtp 127.0.0.1:{port}: connection refused"
    assert "Traceback" not in proc.stdout + proc.stderr


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
