"""The embedded CA (``[ca] kind = "local"``): signs real X.509 certificates under its own root.

It behaves like a commercial DV CA, on one machine with nothing to start:

- ``submit`` records an application keyed by the idempotency key (a retry is the same
  application). File validation hands back a ``.well-known/pki-validation/<random>.txt``
  challenge; mail validation mails the approver a single-use approval URL
  (``...?token=<TOKEN>``) through the configured Notifier.
- ``approve(token)`` is what the approver's click (``certflow ca approve TOKEN``) does.
- ``poll`` checks the placed file (over HTTP, or in the webroot) or the approval, then
  issues a leaf from the intermediate and returns it with the chain.

Files in ``directory``: ``root.pem``, ``intermediate.pem``, ``root.key.enc`` and
``intermediate.key.enc`` (encrypted by the KeyVault, mode 0600), ``ca.db``.

Approval tokens and their once-only mail: adapters.ca.local_mail.
"""
from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timedelta
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.abilities import ApprovalRequest, Health
from adapters.ca.local_health import check_local_ca, load_ca_key
from adapters.common.files import write_atomic
from adapters.settings import AdapterKind, Setting
from adapters.validation.fetch import validation_file_problem
from adapters.base import (Application, BadInput, Challenge, Issued, Notifier, Pending,
                           PermanentError, Refused, Submission)
from adapters.crypto.keys import KeyVault, check_customer_csr, load_csr
from adapters.ca import local_approval, local_certs as certs, local_revoke
from adapters.ca.local_mail import ApprovalMailer, approval_token, token_hash
from adapters.ca.local_store import CAStore
from adapters.common.utc import as_utc as _utc, from_text, to_text
from adapters.crypto.x509check import serial_hex
from states.policy import RANDOM_VALUE_MAX_DAYS

FILE_VALIDATION = "file"
MAIL_VALIDATIONS = ("email", "email-whois")
DEFAULT_LIFETIME = timedelta(days=89)
#: without an order deadline a token lives as long as the approval window
DEFAULT_TOKEN_LIFETIME = timedelta(days=10)
MAX_TOKEN_LIFETIME = timedelta(days=RANDOM_VALUE_MAX_DAYS)
#: a worker that claimed the approval mail and went silent this long is presumed dead
POLL_AGAIN = 60.0
USED_TOKEN = "unknown or already used approval token"


class LocalCA:
    """The embedded CertificateAuthority (see the module docstring).

    Like a commercial DV CA it validates by file or mail and issues for the names of the
    application (a customer CSR may carry only the common name).

    ``clock`` is the engine's injected clock; ``notifier`` sends approval mails (needed
    for mail validation); ``connect_to="host:port"`` fetches validation files from that
    address with the order's domain as Host (like ``curl --connect-to``); without it
    the file is read from the application's webroot.
    """

    validation_methods = frozenset({FILE_VALIDATION, *MAIL_VALIDATIONS})
    names_from_application = True

    def __init__(self, directory: str, vault: KeyVault, clock: Callable[[], datetime],
                 notifier: Notifier | None = None, connect_to: str | None = None,
                 approval_url: str = "https://certflow.localhost/approve",
                 sender_language: str = "ja", http_timeout: float = 5.0,
                 poll_seconds: float = POLL_AGAIN) -> None:
        self.directory = os.path.abspath(directory)
        self.vault = vault
        self.clock = clock
        self.notifier = notifier
        self.connect_to = connect_to
        self.approval_url = approval_url
        self.sender_language = sender_language
        self.http_timeout = http_timeout
        self.poll_seconds = poll_seconds
        self.store = CAStore(self._path("ca.db"))
        self._mailer = ApprovalMailer(self.store, vault, notifier, approval_url,
                                      sender_language, self._now)
        self._ready = False

    def __repr__(self) -> str:
        return f"LocalCA(directory={self.directory!r})"

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _now(self) -> datetime:
        return _utc(self.clock())

    # --- the CA itself ------------------------------------------------------------

    def ensure(self) -> None:
        """Create the root, the intermediate and ``ca.db`` if missing. Idempotent; two
        processes may run it at once (the database's write lock serialises them)."""
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            # the database holds token nonces: owner only (-wal/-shm follow its mode)
            os.close(os.open(self.store.path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise BadInput("ca.dir", f"ca.dir {self.directory}: {exc.strerror}",
                           path=self.directory) from exc
        self.store.create()
        with self.store.transaction():
            now = self._now()
            # after taking the lock, check again what is missing (another process may have
            # made it); a new root always gets a new intermediate
            new_root = not self._has("root")
            if new_root:
                key = certs.new_ca_key()
                self._save("root", key, certs.make_root(key, now))
            if new_root or not self._has("intermediate"):
                root_key = self._load_key("root")
                root = x509.load_pem_x509_certificate(self._read_pem("root").encode("ascii"))
                key = certs.new_ca_key()
                self._save("intermediate", key, certs.make_intermediate(key, root, root_key, now))
        # a master key other than the one that sealed the CA's keys is refused here, before
        # any order is touched (BadInput field "master_key")
        self._load_key("intermediate")
        self._ready = True

    def _has(self, name: str) -> bool:
        return all(os.path.exists(self._path(f)) for f in (f"{name}.pem", f"{name}.key.enc"))

    def _save(self, name: str, key, cert: x509.Certificate) -> None:
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        write_atomic(self._path(f"{name}.key.enc"), self.vault.encrypt(key_pem), 0o600)
        write_atomic(self._path(f"{name}.pem"), cert.public_bytes(serialization.Encoding.PEM),
                      0o644)

    def _load_key(self, name: str):
        path = self._path(f"{name}.key.enc")
        try:
            with open(path, "rb") as handle:
                sealed = handle.read()
        except OSError as exc:
            raise PermanentError(f"local CA {name} key unreadable: {path}: {exc.strerror}",
                                 path=path) from exc
        return load_ca_key(self.vault.decrypt(sealed), name, path)

    def _ensure_once(self) -> None:
        if not self._ready:
            self.ensure()

    def root_pem(self) -> str:
        """The root certificate (what clients must trust; ``certflow ca root``); the CA is
        made first if it does not exist yet."""
        self._ensure_once()
        return self._read_pem("root")

    def _read_pem(self, name: str) -> str:
        with open(self._path(f"{name}.pem"), encoding="ascii") as handle:
            return handle.read()

    def chain_pem(self) -> str:
        """The intermediate certificate, sent with every leaf."""
        with open(self._path("intermediate.pem"), encoding="ascii") as handle:
            return handle.read()

    def check(self) -> Health:
        """Checkable: the CA's files and keys are usable (reads only; doctor)."""
        return check_local_ca(self.directory, self.vault, self._now())

    # --- applications -------------------------------------------------------------

    def submit(self, app: Application) -> Submission:
        """Record the application (once per idempotency key) and start validation."""
        self._ensure_once()
        if app.validation not in self.validation_methods:
            raise Refused(f"the local CA validates by file or email, not {app.validation}",
                          validation=app.validation)
        if app.validation in MAIL_VALIDATIONS:
            if not app.approver:
                raise BadInput("approver", "mail validation needs an approver address")
            if self.notifier is None:
                raise PermanentError("the local CA has no notifier to send approval mail")
        try:
            csr_pem = check_customer_csr(app.csr_pem, app.names, names_from_application=True)
        except BadInput as exc:
            raise Refused(f"the local CA refused the CSR: {exc.message}") from exc

        row = self._record(app, csr_pem)
        if row["status"] == "cancelled":
            raise Refused(f"application {row['application_id']} was cancelled",
                          application_id=row["application_id"])
        if row["validation"] == FILE_VALIDATION:
            challenge = Challenge("http", domain=row["common_name"], name=row["challenge_name"],
                                  content=row["challenge_content"])
            return Submission(row["application_id"], challenges=(challenge,))
        self._mailer.send(row["application_id"], app)
        return Submission(row["application_id"], approver=row["approver"])

    def _record(self, app: Application, csr_pem: str):
        now = self._now()
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM applications WHERE idempotency_key = ?",
                             (app.idempotency_key,)).fetchone()
            if row is not None:
                return row
            application_id = "la-" + secrets.token_hex(8)
            values = {
                "application_id": application_id, "idempotency_key": app.idempotency_key,
                "order_id": app.order_id, "common_name": app.common_name,
                "names": json.dumps(list(app.names)), "validation": app.validation,
                "approver": app.approver, "status": "pending", "created_at": to_text(now),
                "csr_pem": csr_pem, "not_after": to_text(app.not_after),
            }
            if app.validation == FILE_VALIDATION:
                values["challenge_name"] = (".well-known/pki-validation/"
                                            f"{secrets.token_hex(16)}.txt")
                values["challenge_content"] = secrets.token_urlsafe(24)
            else:
                values["token_nonce"] = secrets.token_urlsafe(24)
                expires = now + DEFAULT_TOKEN_LIFETIME
                if app.deadline_at is not None:
                    expires = _utc(app.deadline_at)
                expires = min(expires, now + MAX_TOKEN_LIFETIME)
            columns = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            db.execute(f"INSERT INTO applications ({columns}) VALUES ({marks})",
                       tuple(values.values()))
            if app.validation != FILE_VALIDATION:
                token = approval_token(self.vault, values["token_nonce"])
                db.execute("INSERT INTO tokens (token_hash, application_id, expires_at) "
                           "VALUES (?, ?, ?)", (token_hash(token), application_id, to_text(expires)))
            return db.execute("SELECT * FROM applications WHERE application_id = ?",
                              (application_id,)).fetchone()

    def approve(self, token: str) -> str:
        """Approve the application the token was mailed for; returns its id. Single use."""
        self._ensure_once()
        token = (token or "").strip()
        if not token:
            raise BadInput("token", USED_TOKEN)
        now = self._now()
        with self.store.transaction() as db:
            found = db.execute(
                "SELECT t.token_hash, t.expires_at, t.used_at, a.application_id, a.status "
                "FROM tokens t JOIN applications a USING (application_id) WHERE t.token_hash = ?",
                (token_hash(token),)).fetchone()
            if found is None or found["used_at"] is not None or found["status"] != "pending":
                raise BadInput("token", USED_TOKEN)
            if now > from_text(found["expires_at"]):
                raise BadInput("token", f"approval token expired on {found['expires_at']}")
            db.execute("UPDATE tokens SET used_at = ? WHERE token_hash = ?",
                       (to_text(now), found["token_hash"]))
            db.execute("UPDATE applications SET status = 'approved' WHERE application_id = ?",
                       (found["application_id"],))
        return found["application_id"]

    def approval(self, token: str) -> ApprovalRequest | None:
        """ShowsApprovals: what the token is for; reads only (mail scanners fetch links)."""
        self._ensure_once()
        return local_approval.lookup(self.store, token, self._now())

    def decline(self, token: str) -> ApprovalRequest:
        """ShowsApprovals: the administrator refuses; the token is used up."""
        self._ensure_once()
        return local_approval.decline(self.store, token, self._now())

    def poll(self, application_id: str, app: Application) -> Issued | Pending:
        """Issued once validated (file served, or approved); Pending otherwise."""
        self._ensure_once()
        row = self._get(application_id)
        if row["status"] == "cancelled":
            raise Refused(f"application {application_id} was cancelled",
                          application_id=application_id)
        if row["status"] == "issued":
            return Issued(row["certificate_pem"], self.chain_pem())
        if row["validation"] == FILE_VALIDATION:
            problem = validation_file_problem(row["common_name"], row["challenge_name"],
                                              row["challenge_content"], app.webroot,
                                              self.connect_to, self.http_timeout)
            if problem:
                return Pending(retry_after=self.poll_seconds, detail=problem)
        elif row["status"] != "approved":
            return Pending(retry_after=self.poll_seconds,
                           detail=f"waiting for {row['approver']} to approve")
        return self._issue(application_id, app.not_after)

    def _get(self, application_id: str):
        rows = self.store.read("SELECT * FROM applications WHERE application_id = ?",
                               (application_id,))
        if not rows:
            raise PermanentError(f"unknown local CA application {application_id}",
                                 application_id=application_id)
        return rows[0]

    def _issue(self, application_id: str, requested: datetime | None = None) -> Issued:
        """Sign the leaf once. Its lifetime is the one asked for now, at issuance (the
        poll's application), not at submission: a dated cap may have shrunk meanwhile."""
        now = self._now()
        issuer = x509.load_pem_x509_certificate(self.chain_pem().encode("ascii"))
        try:
            issuer_key = self._load_key("intermediate")
        except BadInput as exc:  # another master key: the CA cannot sign until config is fixed
            raise PermanentError(f"local CA cannot use its key: {exc.message}",
                                 field=exc.field) from exc
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM applications WHERE application_id = ?",
                             (application_id,)).fetchone()
            if row["status"] == "cancelled":
                raise Refused(f"application {application_id} was cancelled",
                              application_id=application_id)
            if row["status"] != "issued":
                not_after = (_utc(requested) if requested else from_text(row["not_after"])) \
                    or now + DEFAULT_LIFETIME
                if not_after <= now:
                    raise Refused(f"requested expiry {row['not_after']} is already past",
                                  application_id=application_id)
                leaf = certs.issue_leaf(load_csr(row["csr_pem"]).public_key(),
                                        tuple(json.loads(row["names"])), issuer, issuer_key,
                                        now, not_after)
                pem = leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
                db.execute("UPDATE applications SET status = 'issued', certificate_pem = ?, "
                           "serial = ?, issued_at = ? WHERE application_id = ?",
                           (pem, serial_hex(leaf.serial_number), to_text(now), application_id))
                return Issued(pem, self.chain_pem())
        return Issued(row["certificate_pem"], self.chain_pem())

    def cancel(self, application_id: str, order_id: str | None = None) -> None:
        """Withdraw the application; its approval token stops working. Idempotent.
        With ``order_id``, an application recorded for another order is left alone."""
        self._ensure_once()
        now = to_text(self._now())
        with self.store.transaction() as db:
            row = db.execute("SELECT status, order_id FROM applications WHERE application_id = ?",
                             (application_id,)).fetchone()
            if row is None:
                raise PermanentError(f"unknown local CA application {application_id}",
                                     application_id=application_id)
            if row["status"] == "cancelled" or (order_id is not None and row["order_id"] != order_id):
                return
            db.execute("UPDATE applications SET status = 'cancelled', cancelled_at = ? "
                       "WHERE application_id = ?", (now, application_id))
            db.execute("UPDATE tokens SET used_at = COALESCE(used_at, ?) WHERE application_id = ?",
                       (now, application_id))

    # --- revocation (adapters.ca.local_revoke) and a resent approval mail ----------

    def revoke(self, cert_pem: str, reason: str) -> None:
        """Revokes: the certificate is on the next CRL (``certflow ca crl``)."""
        self._ensure_once()
        local_revoke.revoke(self.store, cert_pem, reason, self._now())

    def crl_pem(self) -> str:
        """PublishesCRL: the CRL, signed by the intermediate."""
        self._ensure_once()
        issuer = x509.load_pem_x509_certificate(self.chain_pem().encode("ascii"))
        return local_revoke.crl(self.store, issuer, self._load_key("intermediate"), self._now())

    def resend_approval(self, application_id: str, language: str | None = None) -> str:
        """ResendsApproval: the same token again, while it is valid."""
        self._ensure_once()
        return self._mailer.resend(application_id, language or self.sender_language)

    def applications(self) -> list[dict]:
        """Every application, oldest first (``certflow ca applications --json``); no tokens."""
        self._ensure_once()
        rows = self.store.read("SELECT * FROM applications ORDER BY created_at, rowid")
        return [{
            "application_id": r["application_id"], "idempotency_key": r["idempotency_key"],
            "order_id": r["order_id"], "common_name": r["common_name"],
            "names": json.loads(r["names"]), "validation": r["validation"],
            "approver": r["approver"], "status": r["status"], "created_at": r["created_at"],
            "serial": r["serial"],
        } for r in rows]


def _build(settings: dict, wiring) -> LocalCA:
    return LocalCA(settings["dir"], wiring.vault, wiring.now, notifier=wiring.notifier,
                   connect_to=settings["connect_to"], approval_url=settings["approval_url"],
                   poll_seconds=settings["poll_seconds"])


KIND = AdapterKind("ca", "local", "the embedded CA", (
    Setting("dir", "path", "var/data/ca", "Where the root, the intermediate (keys sealed) and "
            "the CA's application database live."),
    Setting("connect_to", "string", None, "Fetch validation files from this `host:port` (Host "
            "header = the order's domain) instead of reading the webroot directly.",
            syntax="host:port"),
    Setting("approval_url", "string", "https://certflow.localhost/approve",
            "The URL mailed to domain administrators; the token is appended as `?token=…`.",
            syntax="url"),
    Setting("poll_seconds", "number", POLL_AGAIN, "Seconds between polls of a pending "
            "application.", minimum=0),
), _build)
