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


#: the contract book (workflow/contracts.py): one row per hosting contract, its fields as
#: put (JSON in ``body``); every change appended to ``contract_changes`` (before, after)
CONTRACT_SCHEMA: dict[str, type] = {
    "id": str, "plan": str, "status": str, "body": str, "updated_at": str, "updated_by": str,
}
CONTRACT_COLUMNS: tuple[str, ...] = tuple(CONTRACT_SCHEMA)
CONTRACT_CHANGE_SCHEMA: dict[str, type] = {
    "id": int, "contract_id": str, "at": str, "actor": str, "before": str, "after": str,
}
CONTRACT_CHANGE_COLUMNS: tuple[str, ...] = tuple(CONTRACT_CHANGE_SCHEMA)


def _m002_contracts(db: sqlite_utils.Database) -> None:
    """Contracts as data; and the index ``place`` asks for the order in flight on a site."""
    db["contracts"].create(CONTRACT_SCHEMA, pk="id", not_null={"plan", "status", "body"})
    db["contracts"].create_index(["status"])
    db["contract_changes"].create(CONTRACT_CHANGE_SCHEMA, pk="id",
                                  not_null={"contract_id", "at", "actor", "after"})
    db["contract_changes"].create_index(["contract_id", "id"])
    db["orders"].create_index(["contract", "common_name"])


def _m004_outbox_by_kind(db: sqlite_utils.Database) -> None:
    """The claim takes due rows kind by kind (workflow.effects.priority)."""
    db["outbox"].create_index(["status", "effect", "next_at"], if_not_exists=True)


#: `certflow operator add`: console logins, the password as an scrypt hash only
OPERATOR_SCHEMA: dict[str, type] = {"name": str, "password_hash": str, "created_at": str}


def _m005_operators(db: sqlite_utils.Database) -> None:
    db["operators"].create(OPERATOR_SCHEMA, pk="name", not_null={"password_hash", "created_at"})


from workflow.store.operator_schema import m003_operator_indexes  # noqa: E402

MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("001_initial", _m001_initial),
    ("002_contracts", _m002_contracts),
    ("003_operator_indexes", m003_operator_indexes),
    ("004_outbox_by_kind", _m004_outbox_by_kind),
    ("005_operators", _m005_operators),
)
SCHEMA_VERSION = len(MIGRATIONS)
