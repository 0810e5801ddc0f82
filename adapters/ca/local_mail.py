"""The local CA's approval mail: the token, and a send that happens once.

The token is ``HMAC(master-key-derived secret, random nonce)``. The CA's database keeps
the nonce and the token's SHA-256, never the token, so a retried mail carries the same
token under the same idempotency key. The send is claimed, made, then recorded; a failed
send releases its claim, and a claim older than ``MAIL_CLAIM_STALE`` is taken over.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Callable

from adapters.base import Application, BadInput, Notice, Notifier, TransientError
from adapters.ca.local_store import CAStore
from adapters.common.utc import from_text, to_text
from adapters.crypto.keys import KeyVault

MAIL_CLAIM_STALE = timedelta(minutes=2)


def approval_token(vault: KeyVault, nonce: str) -> str:
    secret = vault.derive("local-ca approval token")
    digest = hmac.new(secret, nonce.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApprovalMailer:
    """Mails an application's approval URL to its approver, once."""

    def __init__(self, store: CAStore, vault: KeyVault, notifier: Notifier | None,
                 approval_url: str, sender_language: str, now: Callable[[], datetime]) -> None:
        self.store = store
        self.vault = vault
        self.notifier = notifier
        self.approval_url = approval_url
        self.sender_language = sender_language
        self._now = now

    def resend(self, application_id: str, language: str) -> str:
        """Mail the approval URL again with the same token, while that token is unused and
        unexpired (it stays single-use); returns the approver's address. BadInput else."""
        now = self._now()
        rows = self.store.read(
            "SELECT a.*, t.expires_at, t.used_at FROM applications a JOIN tokens t "
            "USING (application_id) WHERE a.application_id = ?", (application_id or "",))
        if not rows or rows[0]["status"] != "pending" or rows[0]["used_at"] is not None:
            raise BadInput("application", f"application {application_id} takes no approval "
                           "any more (approved, cancelled or unknown)")
        row = rows[0]
        if now > from_text(row["expires_at"]):
            raise BadInput("application", f"the approval token of {application_id} expired on "
                           f"{row['expires_at']}")
        self.notifier.send(self._notice(row, language, from_text(row["expires_at"]),
                                        f":approval:resent:{to_text(now)}"))
        return row["approver"]

    def _notice(self, row, language: str, deadline_at, key_suffix: str) -> Notice:
        token = approval_token(self.vault, row["token_nonce"])
        return Notice(
            template="approval_request", to=row["approver"], language=language,
            context={"common_name": row["common_name"], "names": json.loads(row["names"]),
                     "url": f"{self.approval_url}?token={token}",
                     "deadline_at": deadline_at, "order_id": row["order_id"]},
            idempotency_key=row["idempotency_key"] + key_suffix,
        )

    def send(self, application_id: str, app: Application) -> None:
        """Mail the approval URL once: claim the send, send, record it; on failure release
        the claim so a retry sends (the same token, the same idempotency key)."""
        now = self._now()
        claim = secrets.token_hex(8)
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM applications WHERE application_id = ?",
                             (application_id,)).fetchone()
            if row["mail_sent_at"] is not None:
                return
            claimed_at = from_text(row["mail_claimed_at"])
            if row["mail_claim"] and claimed_at and now - claimed_at < MAIL_CLAIM_STALE:
                raise TransientError(f"approval mail for {application_id} is being sent by "
                                     "another worker", retry_after=10, application_id=application_id)
            db.execute("UPDATE applications SET mail_claim = ?, mail_claimed_at = ? "
                       "WHERE application_id = ?", (claim, to_text(now), application_id))
        notice = self._notice(row, app.language or self.sender_language, app.deadline_at,
                              ":approval")
        try:
            self.notifier.send(notice)
        except BaseException:
            with self.store.transaction() as db:
                db.execute("UPDATE applications SET mail_claim = NULL, mail_claimed_at = NULL "
                           "WHERE application_id = ? AND mail_claim = ?", (application_id, claim))
            raise
        with self.store.transaction() as db:
            db.execute("UPDATE applications SET mail_sent_at = ?, mail_claim = NULL, "
                       "mail_claimed_at = NULL WHERE application_id = ?",
                       (to_text(self._now()), application_id))
