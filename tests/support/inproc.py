"""The real ``certflow`` entry point run in this process (click's CliRunner), so property
tests can afford thousands of cases, and a snapshot of everything a command may write."""
from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from workflow import config as config_mod
from workflow.ops.cli import main

#: exit codes of the CLI contract; 1 is a bug
ALLOWED_EXITS = (0, 2, 75)
TABLES = ("orders", "events", "outbox", "certificates", "keys")
#: SQLite's own files change on every open (WAL, shared memory): compared by rows instead
_DB_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    def describe(self) -> str:
        return (f"exit {self.exit_code}\nstdout: {self.stdout[-2000:]}\nstderr: "
                f"{self.stderr[-2000:]}\nexception: {self.exception!r}")


def invoke(config: Path, *args: str, stdin: str | None = None) -> Result:
    """``certflow --config CONFIG ARGS...`` in-process, CERTFLOW_DEBUG unset."""
    os.environ.pop("CERTFLOW_DEBUG", None)
    runner = CliRunner()
    res = runner.invoke(main, ["--config", str(config), *args], input=stdin,
                        catch_exceptions=True)
    exc = res.exception if not isinstance(res.exception, SystemExit) else None
    return Result(res.exit_code, res.stdout, res.stderr, exc)


def assert_contract_exit(res: Result) -> None:
    """0, 2 or 75, never a traceback; a refusal is one line naming what was wrong."""
    assert res.exception is None and res.exit_code in ALLOWED_EXITS, res.describe()
    assert "Traceback" not in res.stderr and "unexpected error" not in res.stderr, res.describe()
    if res.exit_code == 2:
        assert res.stderr.startswith(("certflow: ", "Usage:", "Error:")), res.describe()


def row_counts(config: Path) -> dict[str, int]:
    db = config_mod.load(config)["store"]["path"]
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def file_digests(root: Path) -> dict[str, str]:
    """Every file under ``root`` (but SQLite's) with its SHA-256 and mode."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and not path.name.endswith(_DB_SUFFIXES):
            data = path.read_bytes()
            out[str(path.relative_to(root))] = \
                f"{hashlib.sha256(data).hexdigest()} {path.stat().st_mode & 0o7777:o}"
    return out


def snapshot(config: Path) -> tuple[dict, dict]:
    """What a refused command must leave as it was: store rows and workspace files."""
    return row_counts(config), file_digests(Path(config).parent)
