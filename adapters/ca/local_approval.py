"""What an approval link shows before anyone acts on it, and the refusal.

``lookup`` only reads: a mail scanner that fetches the link changes nothing. ``decline``
uses the token up and withdraws the application, like ``approve`` does the opposite.
"""
from __future__ import annotations

import json
from datetime import datetime

from adapters.abilities import ApprovalRequest
from adapters.base import BadInput
from adapters.ca.local_mail import token_hash
from adapters.ca.local_store import CAStore
from adapters.common.utc import from_text, to_text

_FIND = ("SELECT t.token_hash, t.expires_at, t.used_at, a.application_id, a.order_id, "
         "a.common_name, a.names, a.approver, a.status FROM tokens t "
         "JOIN applications a ON a.application_id = t.application_id WHERE t.token_hash = ?")


def _request(row, now: datetime) -> ApprovalRequest:
    expired = now > from_text(row["expires_at"])
    if row["status"] == "cancelled":  # the order ended (its deadline, a decline, an operator)
        status = "expired" if expired else "withdrawn"
    elif row["used_at"] is not None or row["status"] != "pending":
        status = "used"
    else:
        status = "expired" if expired else "pending"
    return ApprovalRequest(application_id=row["application_id"], order_id=row["order_id"],
                           common_name=row["common_name"], names=tuple(json.loads(row["names"])),
                           approver=row["approver"], expires_at=from_text(row["expires_at"]),
                           status=status)


def lookup(store: CAStore, token: str, now: datetime) -> ApprovalRequest | None:
    """The application behind ``token`` (None when no such token was ever made)."""
    rows = store.read(_FIND, (token_hash(token),))
    return _request(rows[0], now) if rows else None


def decline(store: CAStore, token: str, now: datetime) -> ApprovalRequest:
    """The administrator refuses: the token is used up and the application cancelled.
    BadInput (field ``token``) when the token is unknown, used or expired."""
    with store.transaction() as db:
        row = db.execute(_FIND, (token_hash(token),)).fetchone()
        if row is None:
            raise BadInput("token", "unknown approval token")
        request = _request(row, now)
        if request.status != "pending":
            raise BadInput("token", f"approval token {request.status}")
        stamp = to_text(now)
        db.execute("UPDATE tokens SET used_at = ? WHERE token_hash = ?", (stamp, row["token_hash"]))
        db.execute("UPDATE applications SET status = 'cancelled', cancelled_at = ? "
                   "WHERE application_id = ?", (stamp, row["application_id"]))
    return request
