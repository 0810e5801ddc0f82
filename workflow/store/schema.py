"""The schema: one column definition per table, and the named migrations.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction and records its name in
``schema_version``; opening a store whose schema is current only reads (no write lock).
"""
from __future__ import annotations

from typing import Callable

import sqlite_utils

#: the ``orders`` row, in column order: the one definition every statement is built from
ORDER_SCHEMA: dict[str, type] = {
    "id": str, "state": str, "version": int, "entered_seq": int,
    "common_name": str, "sans": str, "plan": str, "contract": str, "validation": str,
    "approver": str, "email": str, "language": str, "organization": str, "unit": str,
    "locality": str, "prefecture": str, "country": str, "renewal_of": str,
    "csr": str, "reason": str, "held_from": str, "held_deadline": str,
    "deadline_at": str, "deadline_trigger": str, "data": str,
    "created_at": str, "updated_at": str,
}
ORDER_COLUMNS: tuple[str, ...] = tuple(ORDER_SCHEMA)
EVENT_SCHEMA: dict[str, type] = {
    "order_id": str, "seq": int, "at": str, "trigger": str, "source": str, "dest": str,
    "actor": str, "data": str,
}
EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA)
CERTIFICATE_SCHEMA: dict[str, type] = {
    "order_id": str, "serial": str, "not_before": str, "not_after": str, "sha256": str,
    "names": str, "cert_pem": str, "chain_pem": str, "issued_at": str,
}
CERTIFICATE_COLUMNS: tuple[str, ...] = tuple(CERTIFICATE_SCHEMA)
OUTBOX_SCHEMA: dict[str, type] = {
    "id": int, "order_id": str, "seq": int, "state": str, "effect": str, "param": str,
    "idem_key": str, "bound": int, "status": str, "attempts": int, "next_at": str,
    "lease_owner": str, "lease_until": str, "last_error": str, "created_at": str,
    "done_at": str,
}

Migration = Callable[[sqlite_utils.Database], None]


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["orders"].create(ORDER_SCHEMA, pk="id",
                        not_null={"state", "version", "common_name", "plan", "contract"})
    db["orders"].create_index(["state"])
    db["orders"].create_index(["deadline_at"])
    db["orders"].create_index(["renewal_of"], unique=True)
    db["events"].create(EVENT_SCHEMA, pk=("order_id", "seq"),
                        foreign_keys=[("order_id", "orders", "id")])
    db["outbox"].create(OUTBOX_SCHEMA, pk="id")
    db["outbox"].create_index(["idem_key"], unique=True)
    db["outbox"].create_index(["status", "next_at"])
    db["certificates"].create(CERTIFICATE_SCHEMA, pk="order_id")
    db["certificates"].create_index(["not_after"])
    db["keys"].create({"order_id": str, "algorithm": str, "sealed": bytes, "created_at": str},
                      pk="order_id")


#: `certflow operator add`: console logins, the password as an scrypt hash only
OPERATOR_SCHEMA: dict[str, type] = {"name": str, "password_hash": str, "created_at": str}


def _m004_operators(db: sqlite_utils.Database) -> None:
    db["operators"].create(OPERATOR_SCHEMA, pk="name", not_null={"password_hash", "created_at"})


from workflow.store.operator_schema import m003_operator_indexes  # noqa: E402

MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("001_initial", _m001_initial),
    ("003_operator_indexes", m003_operator_indexes),
    ("004_operators", _m004_operators),
)
SCHEMA_VERSION = len(MIGRATIONS)
