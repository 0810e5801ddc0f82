"""The real ``certflow`` entry point run in this process (click's CliRunner), so property
tests can afford thousands of cases, and a snapshot of everything a command may write."""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
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


#: what the running property case is (set by the test), recorded with a finding
CASE: dict[str, str] = {}


def _violation(kind: str, res: Result, detail: str = "") -> None:
    """Fail, or with ``FUZZ_FINDINGS=FILE`` (exploring: find every distinct crash in one
    run) append the finding to FILE and drop the case, so the run goes on."""
    findings = os.environ.get("FUZZ_FINDINGS")
    if not findings:
        raise AssertionError(f"{kind}: {detail}\n{res.describe()}")
    from hypothesis import reject
    first = (res.stderr.strip().splitlines() or [repr(res.exception)])[0]
    signature = re.sub(r"[0-9a-f]{8,}|/\S+|\d+", "#", first)[:160]
    with open(findings, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"kind": kind, "signature": signature, "exit": res.exit_code,
                             "stderr": res.stderr[-600:], "detail": detail[-600:],
                             "exception": repr(res.exception), "case": dict(CASE)}) + "\n")
    reject()


def assert_contract_exit(res: Result) -> None:
    """0, 2 or 75, never a traceback; a refusal is one line naming what was wrong."""
    try:
        from hypothesis import event
        event(f"exit {res.exit_code}")  # counted in --hypothesis-show-statistics
    except Exception:  # outside a property test
        pass
    if res.exception is not None or res.exit_code not in ALLOWED_EXITS or \
            "Traceback" in res.stderr or "unexpected error" in res.stderr:
        _violation("exit", res)
    if res.exit_code == 2 and not res.stderr.startswith(("certflow: ", "Usage:", "Error:")):
        _violation("refusal text", res)


def assert_unchanged(before, after, res: Result) -> None:
    """A refused command wrote nothing: the same store rows, the same files."""
    if before != after:
        rows = {k: (v, after[0].get(k)) for k, v in before[0].items() if after[0].get(k) != v}
        files = sorted(set(before[1].items()) ^ set(after[1].items()))[:6]
        _violation("written after refusal", res, f"rows {rows} files {files}")


@lru_cache(maxsize=None)
def _settings(config: str) -> tuple[str, tuple[str, ...]]:
    """The store and the folders of a workspace, as its config said when first asked (a
    property test may break the config afterwards: the store stays where it was)."""
    cfg = config_mod.load(config)
    return cfg["store"]["path"], (cfg["notify"]["folder"], cfg["install"]["root"])


def row_counts(config: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{_settings(str(config))[0]}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def file_digests(root: Path) -> dict[str, str]:
    """Every file under ``root`` (but SQLite's) with its size, change time and mode: a
    rewrite shows even with the same content."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and not path.name.endswith(_DB_SUFFIXES):
            st = path.stat()
            out[str(path.relative_to(root))] = f"{st.st_size} {st.st_mtime_ns} {st.st_mode:o}"
    return out


def reset_orders(config: Path) -> None:
    """Forget every order, its mail and its installed files (as an operator with sqlite3
    and rm would), so a long property run does not slow down as the workspace grows."""
    db, folders = _settings(str(config))
    conn = sqlite3.connect(db)
    with conn:
        for table in ("outbox", "events", "certificates", "keys", "orders"):
            conn.execute(f"DELETE FROM {table}")
    conn.close()
    for folder in folders:
        if folder and Path(folder).is_dir():
            shutil.rmtree(folder)
            Path(folder).mkdir()


def snapshot(config: Path) -> tuple[dict, dict]:
    """What a refused command must leave as it was: store rows and workspace files."""
    return row_counts(config), file_digests(Path(config).parent)
