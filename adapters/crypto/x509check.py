"""Checks every certificate a CA sends before anything is installed.

:func:`verify_issued` refuses (``BadInput(field="certificate")``) a certificate whose key is
not the order's, whose names differ from the order's, that is not valid now, that lives
longer than the dated cap (BR 6.3.2 counts validity inclusively: notAfter - notBefore +
1 s), or that does not chain to a configured trust root (``cryptography.x509.verification``,
the Web PKI profile). A damaged certificate (bad ASN.1 in an extension, an unsupported
key) is refused the same way, never raised as a parser error.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from adapters.base import BadInput
from adapters.common.spki import same_public_key
from adapters.common.utc import as_utc as _utc
from adapters.crypto.keys import a_label, load_csr


@dataclass(frozen=True)
class CertInfo:
    """What the engine records about a certificate (``order show``: ``certificate``)."""

    serial: str            # lower-case hex
    not_before: datetime   # UTC
    not_after: datetime    # UTC
    sha256: str            # lower-case hex fingerprint of the DER
    names: tuple[str, ...]  # SAN DNS names, in certificate order


def _load_all(pem: str, what: str) -> list[x509.Certificate]:
    if not pem or "-----BEGIN CERTIFICATE-----" not in pem:
        return []
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii", "replace"))
    except ValueError as exc:
        raise BadInput("certificate", f"{what}: malformed PEM certificate") from exc
    for cert in certs:
        # cryptography parses extensions and keys lazily: read them now, refuse damage here
        try:
            cert.extensions
            cert.public_key()
        except UnsupportedAlgorithm as exc:
            raise BadInput("certificate", f"{what}: unsupported public key: {exc}") from None
        except ValueError as exc:
            raise BadInput("certificate", f"{what}: damaged certificate: {exc}") from None
    return certs


def _load_one(pem: str) -> x509.Certificate:
    certs = _load_all(pem, "certificate")
    if not certs:
        raise BadInput("certificate", "no PEM certificate found")
    return certs[0]


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def san_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))


def _common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _covers(sans: tuple[str, ...], name: str) -> bool:
    if name in sans:
        return True
    # "*.example.jp" covers exactly one label: a.example.jp, not a.b.example.jp.
    head, _, rest = name.partition(".")
    return bool(rest) and not head.startswith("*") and f"*.{rest}" in sans


def serial_hex(serial: int) -> str:
    """Lower-case hex, an even number of digits (as ``openssl x509 -serial``, lower-cased)."""
    text = f"{serial:x}"
    return text.zfill(len(text) + len(text) % 2)


def _info(cert: x509.Certificate) -> CertInfo:
    return CertInfo(
        serial=serial_hex(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        names=san_names(cert),
    )


def cert_info(cert_pem: str) -> CertInfo:
    """Serial, validity, SHA-256 fingerprint and names of the first certificate in ``cert_pem``."""
    return _info(_load_one(cert_pem))


def parse_bundle(pem: str) -> tuple[str, str]:
    """Split a PEM holding several certificates into (leaf PEM, chain PEM).

    The leaf is the first certificate that is not a CA; the chain is the others, in order.
    """
    certs = _load_all(pem, "bundle")
    if not certs:
        raise BadInput("certificate", "no PEM certificate found")
    leaf = next((c for c in certs if not _is_ca(c)), certs[0])
    chain = [c for c in certs if c is not leaf]
    return _pem(leaf), "".join(_pem(c) for c in chain)


def _verifier_name(names: tuple[str, ...]) -> str:
    # The verifier wants a concrete host; a wildcard order is checked with a name it covers.
    for name in names:
        if not name.startswith("*."):
            return name
    return "certflow-check" + names[0][1:]


def br_validity(cert: x509.Certificate) -> timedelta:
    """The validity period as BR 6.3.2 counts it: notAfter - notBefore + 1 second."""
    return cert.not_valid_after_utc - cert.not_valid_before_utc + timedelta(seconds=1)


def check_lifetime(cert: x509.Certificate, cap: timedelta) -> None:
    """Refuse a certificate that lives longer than ``cap`` (counted the BR way)."""
    validity = br_validity(cert)
    if validity > cap:
        raise BadInput("certificate", f"certificate lives {_days(validity)} days (notAfter - "
                                      f"notBefore + 1 s), over the {_days(cap)}-day cap of the "
                                      "Baseline Requirements",
                       validity_seconds=validity.total_seconds())


def _days(delta: timedelta) -> str:
    return f"{delta / timedelta(days=1):.2f}".rstrip("0").rstrip(".")


def verify_issued(certificate_pem: str, chain_pem: str, *, csr_pem: str, names: tuple[str, ...],
                  trust_roots: list[str], now: datetime,
                  lifetime_cap: Callable[[datetime], timedelta] | None = None) -> CertInfo:
    """Check a certificate from a CA against the order; return what to record.

    ``certificate_pem`` may hold the chain too (it is split off). ``lifetime_cap(when)``
    gives the dated cap (publicly-trusted certificates); it is taken at issuance (the
    later of notBefore and ``now``). Raises ``BadInput(field="certificate")`` naming the
    first problem found.
    """
    leaf_pem, bundled_chain = parse_bundle(certificate_pem)
    leaf = _load_one(leaf_pem)
    intermediates = _load_all(bundled_chain, "certificate bundle") + _load_all(chain_pem, "chain")
    now = _utc(now)

    csr = load_csr(csr_pem)
    if not same_public_key(leaf.public_key(), csr.public_key()):
        raise BadInput("certificate", "certificate public key does not match the order's key")

    sans = san_names(leaf)
    labels = tuple(a_label(n) for n in names)
    missing = [n for n in labels if not _covers(sans, n)]
    if missing:
        raise BadInput("certificate",
                       f"certificate names do not cover the order: missing {', '.join(missing)}",
                       missing=tuple(missing))
    extra = [n for n in sans if n not in labels]
    extra += [cn for cn in _common_names(leaf) if cn not in labels and cn not in extra]
    if extra:
        raise BadInput("certificate", f"certificate names {', '.join(extra)}, which the order "
                                      "does not", extra=tuple(extra))

    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if now < not_before:
        raise BadInput("certificate", f"certificate not yet valid: valid from "
                                      f"{not_before.isoformat()}, now is {now.isoformat()}")
    if now > not_after:
        raise BadInput("certificate", f"certificate expired on {not_after.isoformat()}")
    if lifetime_cap is not None:
        check_lifetime(leaf, lifetime_cap(max(not_before, now)))

    roots = [c for pem in trust_roots for c in _load_all(pem, "trust root")]
    if not roots:
        raise BadInput("trust_roots", "no trust roots configured to check the certificate against")
    try:
        verifier = (verification.PolicyBuilder()
                    .store(verification.Store(roots))
                    .time(now)
                    .build_server_verifier(verification.DNSName(_verifier_name(labels))))
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as exc:
        why = " ".join(str(exc).split())
        raise BadInput("certificate",
                       f"certificate does not chain to a trusted root: {why}") from exc
    return _info(leaf)
