"""One set of statements for both databases.

certflow's statements are written once, in the SQLite dialect with ``?`` placeholders
(workflow/store/transaction.py, workflow/store/sqlite.py). :func:`postgres` turns such a
statement into PostgreSQL's dialect mechanically, so a new statement serves both as long
as it keeps to what the translation knows:

- ``?`` placeholders (become ``%s``; a literal ``%`` is escaped);
- ``json_extract(column, '$.a.b')`` (becomes ``(column::jsonb #>> '{a,b}')``, text like
  SQLite's for scalars; test it ``IS NULL`` or compare it with text);
- ``INSERT OR IGNORE INTO …`` (becomes ``INSERT INTO … ON CONFLICT DO NOTHING``);
- ``ON CONFLICT(col) DO UPDATE SET x = excluded.x`` and ``COALESCE`` are the same in both;
- ``rowid`` (every PostgreSQL table certflow makes has one: insertion order).

What cannot be said in both is a *twin*: a class attribute or a method of
:class:`workflow.store.postgres_tx.PostgresTransaction` overriding the SQLite one
(``INSERT OR REPLACE``, row locks, advisory locks). Anything else raises here, naming
the statement, rather than reaching the server half-translated.
"""
from __future__ import annotations

import functools
import re

_JSON = re.compile(r"json_extract\(\s*([\w.]+)\s*,\s*'\$\.([\w.]+)'\s*\)")
_SQLITE_ONLY = re.compile(r"\b(?:INSERT OR REPLACE|datetime\(|PRAGMA\b|sqlite_master|BEGIN IMMEDIATE"
                          r"|GLOB\b|IFNULL\()", re.IGNORECASE)


def _json_path(match: re.Match) -> str:
    return f"({match[1]}::jsonb #>> '{{{','.join(match[2].split('.'))}}}')"


@functools.lru_cache(maxsize=2048)
def postgres(sql: str) -> str:
    """``sql`` (SQLite dialect, ``?`` placeholders) in PostgreSQL's dialect."""
    found = _SQLITE_ONLY.search(sql)
    if found:
        raise ValueError(f"{found[0]} has no PostgreSQL translation; write a twin in "
                         f"workflow/store/postgres_tx.py: {sql}")
    out = sql.replace("%", "%%")
    out = _JSON.sub(_json_path, out)
    if re.match(r"\s*INSERT OR IGNORE INTO", out, re.IGNORECASE):
        out = re.sub(r"INSERT OR IGNORE INTO", "INSERT INTO", out, count=1,
                     flags=re.IGNORECASE) + " ON CONFLICT DO NOTHING"
    return out.replace("?", "%s")
