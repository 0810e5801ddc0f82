"""Migration 003 (issue 19, the operator's window): the indexes that make ``order list``
filters, ``order show``'s pending effects and ``status`` bounded at a million orders,
and ``order_names`` (one row per searchable name form of an order, for ``--cn``).

Independent of other migrations: it only adds a table and indexes, and fills the table
from the orders already there.
"""
from __future__ import annotations

import sqlite_utils

from workflow.store.names import search_names

ORDER_NAMES_SCHEMA: dict[str, type] = {"order_id": str, "name": str}
INSERT_NAME = "INSERT INTO order_names (order_id, name) VALUES (?, ?)"


def m003_operator_indexes(db: sqlite_utils.Database) -> None:
    db["order_names"].create(ORDER_NAMES_SCHEMA, pk=("order_id", "name"))
    db["order_names"].create_index(["name"])
    db["orders"].create_index(["state", "id"])
    db["orders"].create_index(["state", "updated_at"])
    db["orders"].create_index(["contract", "id"])
    db["orders"].create_index(["email", "id"])
    db["outbox"].create_index(["order_id", "status"])
    db["outbox"].create_index(["effect", "status"])
    # plain statements: sqlite-utils' bulk insert would commit the migration's transaction
    rows = db.execute("SELECT id, common_name, sans FROM orders")
    db.conn.executemany(INSERT_NAME, ((order_id, name) for order_id, cn, sans in rows
                                      for name in search_names(cn, sans)))
