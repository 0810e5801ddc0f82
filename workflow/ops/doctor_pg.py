"""``doctor``'s look at a PostgreSQL store: the connection, the server's version, the
schema version (and that its migrations are the ones this certflow knows)."""
from __future__ import annotations

from workflow.errors import StoreUnavailable

#: the oldest server certflow's statements are written for (SKIP LOCKED, identity
#: columns, hashtextextended)
MIN_SERVER = 11


class Failed(Exception):
    """The check failed: ``summary`` for the last line, ``detail`` for the check's line
    (doctor turns it into its own Failed)."""

    def __init__(self, summary: str, detail: str) -> None:
        super().__init__(summary)
        self.summary, self.detail = summary, detail


def check_postgres(config, final_states: tuple[str, ...]) -> tuple[str, str]:
    from workflow.store.postgres import inspect, redact
    from workflow.store.schema import MIGRATIONS, SCHEMA_VERSION
    url = config["store"]["url"]
    where = redact(url)
    try:
        found = inspect(url, final_states)
    except StoreUnavailable as exc:
        raise Failed(f"database {where} unreachable", exc.message) from None
    major = int(found["server"].split(".")[0].split()[0])
    if major < MIN_SERVER:
        raise Failed(f"PostgreSQL {found['server']} is too old",
                     f"{where}: PostgreSQL {found['server']}; certflow needs {MIN_SERVER} or newer")
    version, names = found["version"], found["names"]
    known = [n for n, _ in MIGRATIONS]
    if version > SCHEMA_VERSION or names != known[:version]:
        raise Failed(f"database {where} schema is not this certflow's",
                     f"{where}: migrations {', '.join(names)}; this certflow knows "
                     f"{', '.join(known)}: upgrade certflow")
    detail = (f"{where}: PostgreSQL {found['server']}, schema {version} "
              f"({names[-1] if names else 'empty'}), {found['orders']} orders")
    orphans = [f"{n} in flight on contract {c!r}, which is not in config (they are held)"
               for c, n in found["in_flight"] if c not in config.contracts]
    if orphans:
        detail += "; " + "; ".join(orphans)
    if version < SCHEMA_VERSION:
        pending = ", ".join(known[version:])
        return "note", detail + f"; migrations {pending} run at the next start (back up first)"
    return ("note" if orphans else "ok"), detail
