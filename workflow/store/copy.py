"""``certflow store copy --to postgresql://…``: a SQLite store into an empty PostgreSQL
database, every table the schema has (orders, events, outbox, certificates, sealed keys,
and whatever later migrations add), in one PostgreSQL transaction.

Table-driven: the tables and columns are read from the SQLite database itself, so a
table a new migration makes is copied with nothing written here. Rows keep SQLite's
``rowid`` (insertion order), identity sequences continue after the highest copied id.
The copy is checked before it commits: row counts per table, and every order replayed
from its events must equal its stored row (the same check as ``replay --verify``).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from workflow.errors import CertflowError, StoreUnavailable
from workflow.store.postgres import PostgresStore
from workflow.store.sqlite import SQLiteStore


class TargetNotEmpty(CertflowError):
    """The target database already holds certflow rows: nothing is copied over them."""

    fields = ("url", "table", "rows")

    def __init__(self, url: str, table: str, rows: int) -> None:
        super().__init__(f"store copy refused: {url} is not empty ({table} has {rows} rows); "
                         "copy into an empty database", url=url, table=table, rows=rows)


class CopyMismatch(CertflowError):
    """The copy did not verify; it was rolled back."""

    fields = ("url", "problems")

    def __init__(self, url: str, problems: list[str]) -> None:
        super().__init__(f"store copy to {url} rolled back: {'; '.join(problems[:5])}"
                         + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
                         url=url, problems=problems)


@dataclass
class CopyReport:
    url: str
    rows: dict[str, int] = field(default_factory=dict)
    verified_orders: int = 0


def _tables(conn: sqlite3.Connection) -> list[str]:
    """certflow's tables, each after the tables its foreign keys name."""
    names = [n for (n,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'schema_version' ORDER BY name")]
    refs = {n: {r[2] for r in conn.execute(f'PRAGMA foreign_key_list("{n}")')} for n in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and refs[n] <= set(ordered) | {n}]
        ordered += ready or [n for n in names if n not in ordered]  # a cycle: as listed
    return ordered


def _columns(conn: sqlite3.Connection, table: str) -> tuple[list[str], bool]:
    """The table's columns, and whether it has a rowid of its own (no INTEGER PRIMARY KEY)."""
    info = list(conn.execute(f'PRAGMA table_info("{table}")'))
    alias = [r[1] for r in info if r[5] == 1 and r[2].upper() == "INTEGER"
             and sum(1 for x in info if x[5]) == 1]
    return [r[1] for r in info], not alias


def copy_store(source: SQLiteStore, url: str, lifecycle, batch: int = 5000) -> CopyReport:
    """Copy ``source`` into the empty PostgreSQL database at ``url``, verified, or nothing."""
    from workflow.history.replay import replay_rows
    target = PostgresStore(url)  # makes the schema (every migration) if it is not there
    report = CopyReport(target.path)
    try:
        with source.snapshot(), target.transaction() as tx:
            raw = tx.conn.raw
            src = source.conn
            tables = _tables(src)
            for table in tables:
                found = raw.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                if found:
                    raise TargetNotEmpty(target.path, table, found)
            for table in tables:
                columns, has_rowid = _columns(src, table)
                target_columns = {r[0] for r in raw.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "AND table_schema = current_schema()", (table,))}
                missing = [c for c in columns if c not in target_columns]
                if missing:
                    raise CopyMismatch(target.path, [f"{table}.{c} has no column in the target"
                                                     for c in missing])
                if has_rowid and "rowid" in target_columns:
                    columns = ["rowid", *columns]
                names = ", ".join(f'"{c}"' for c in columns)
                cur = src.execute(f"SELECT {names} FROM \"{table}\" ORDER BY rowid")
                count = 0
                with raw.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    while rows := cur.fetchmany(batch):
                        for row in rows:
                            copy.write_row(tuple(row))
                        count += len(rows)
                report.rows[table] = count
                _continue_identities(raw, table)
            problems = [f"{t}: {n} rows copied, {got} in the target" for t, n in report.rows.items()
                        if (got := raw.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) != n]
            rows = replay_rows(target, lifecycle, None, verify=True)
            problems += [f"order {r['id']}: {r['error']}" for r in rows if not r["ok"]]
            if problems:
                raise CopyMismatch(target.path, problems)
            report.verified_orders = len(rows)
    except sqlite3.Error as exc:
        raise source._unavailable(exc) from None
    finally:
        target.close()
    return report


def _continue_identities(raw, table: str) -> None:
    """Identity columns go on after the highest copied value."""
    for (column,) in raw.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND "
            "table_schema = current_schema() AND is_identity = 'YES'", (table,)).fetchall():
        raw.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', %s), "
                    f'GREATEST((SELECT max("{column}") FROM "{table}"), 1), '
                    f'(SELECT max("{column}") FROM "{table}") IS NOT NULL)', (column,))


__all__ = ["copy_store", "CopyReport", "TargetNotEmpty", "CopyMismatch", "StoreUnavailable"]
