"""Rows as the engine reads them."""
from __future__ import annotations

from workflow.store.schema import ORDER_COLUMNS


def order_record(row) -> dict:
    """An order row as a dict, its certificate summary under ``certificate``."""
    rec = {c: row[c] for c in ORDER_COLUMNS}
    rec["certificate"] = ({k: row[k] for k in ("serial", "not_before", "not_after", "sha256")}
                          if row["serial"] else None)
    return rec
