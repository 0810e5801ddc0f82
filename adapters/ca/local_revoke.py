"""The embedded CA's revocations and its CRL (RFC 5280 §5), signed by the intermediate.

A revocation is a row of ``revocations`` in ``ca.db`` keyed by serial: revoking again
keeps the first row (idempotent). Only a certificate this CA issued is revoked. The CRL
lists every revocation with its reason; ``crlNumber`` is the count of revocations, so
it grows with each one. ``nextUpdate`` is a week on: publish it at least daily.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from adapters.abilities import REVOCATION_REASONS
from adapters.base import BadInput
from adapters.ca.local_store import CAStore
from adapters.common.utc import from_text, to_text
from adapters.crypto.x509check import serial_hex

CRL_VALIDITY = timedelta(days=7)
_FLAGS = {"unspecified": x509.ReasonFlags.unspecified,
          "keyCompromise": x509.ReasonFlags.key_compromise,
          "affiliationChanged": x509.ReasonFlags.affiliation_changed,
          "superseded": x509.ReasonFlags.superseded,
          "cessationOfOperation": x509.ReasonFlags.cessation_of_operation}


def revoke(store: CAStore, cert_pem: str, reason: str, now: datetime) -> str:
    """Record the revocation of a certificate this CA issued; returns its serial (hex)."""
    if reason not in REVOCATION_REASONS:
        raise BadInput("reason", f"reason {reason!r} unknown: use one of "
                       f"{', '.join(REVOCATION_REASONS)}")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    except ValueError as exc:
        raise BadInput("certificate", f"not a PEM certificate: {exc}") from exc
    serial = serial_hex(cert.serial_number)
    with store.transaction() as db:
        if db.execute("SELECT 1 FROM applications WHERE serial = ?", (serial,)).fetchone() is None:
            raise BadInput("certificate", f"certificate {serial} was not issued by this local CA")
        db.execute("INSERT OR IGNORE INTO revocations (serial, reason, revoked_at) "
                   "VALUES (?, ?, ?)", (serial, reason, to_text(now)))
    return serial


def crl(store: CAStore, issuer: x509.Certificate, issuer_key, now: datetime) -> str:
    """The CRL (PEM) of every revocation, signed by ``issuer``."""
    rows = store.read("SELECT serial, reason, revoked_at FROM revocations ORDER BY revoked_at")
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer.subject)
               .last_update(now - timedelta(minutes=1))
               .next_update(now + CRL_VALIDITY)
               .add_extension(x509.CRLNumber(len(rows)), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_key.public_key()), critical=False))
    for row in rows:
        entry = (x509.RevokedCertificateBuilder()
                 .serial_number(int(row["serial"].replace(":", ""), 16))
                 .revocation_date(from_text(row["revoked_at"]))
                 .add_extension(x509.CRLReason(_FLAGS[row["reason"]]), critical=False)
                 .build())
        builder = builder.add_revoked_certificate(entry)
    signed = builder.sign(issuer_key, hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode("ascii")
