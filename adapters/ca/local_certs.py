"""X.509 building blocks of the embedded CA: its root, its intermediate and leaf certificates.

Profiles follow the Web PKI (what ``cryptography.x509.verification`` and browsers check)
and the CA/B Forum TLS BRs as far as a CA without CRL, OCSP, AIA or policies can (see
``make lint-certs``): CA certificates carry critical basicConstraints and keyUsage
keyCertSign; leaves carry serverAuth, keyUsage digitalSignature, the SANs, AKI and
basicConstraints CA=false.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_LIFETIME = timedelta(days=20 * 365)
INTERMEDIATE_LIFETIME = timedelta(days=10 * 365)
# Backdated so that a clock a little behind ours (or the engine's injected clock) accepts them.
CA_BACKDATE = timedelta(days=7)
LEAF_BACKDATE = timedelta(minutes=1)


def new_ca_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certflow local CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                         crl_sign=True, encipher_only=False, decipher_only=False)


def make_root(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    """A self-signed root, named with a random suffix so two installations never look alike."""
    name = _name(f"certflow Local Root CA {secrets.token_hex(4)}")
    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CA_BACKDATE).not_valid_after(now + ROOT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))


def make_intermediate(key: ec.EllipticCurvePrivateKey, root: x509.Certificate,
                      root_key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    """The issuing CA, signed by the root; may only sign leaves (pathLen 0)."""
    suffix = root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.rsplit(" ", 1)[-1]
    public = key.public_key()
    not_after = min(now + INTERMEDIATE_LIFETIME, root.not_valid_after_utc)
    return (x509.CertificateBuilder()
            .subject_name(_name(f"certflow Local Issuing CA {suffix}"))
            .issuer_name(root.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CA_BACKDATE).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))


def issue_leaf(public_key, names: tuple[str, ...], issuer: x509.Certificate,
               issuer_key: ec.EllipticCurvePrivateKey, now: datetime,
               not_after: datetime) -> x509.Certificate:
    """A server certificate for ``public_key`` and ``names`` (SAN; CN = names[0] if it fits).

    ``not_after`` is what was asked for counting from ``now``. The leaf is backdated by
    LEAF_BACKDATE, so notAfter moves back by as much, and by one second more because
    BR 6.3.2 counts both ends (validity = notAfter - notBefore + 1 s): the validity is
    then at most ``not_after - now``. notAfter is clamped to the issuer's own expiry.
    """
    not_before = now - LEAF_BACKDATE
    validity = not_after - now
    last_second = min(not_before + validity - timedelta(seconds=1), issuer.not_valid_after_utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]
                        if len(names[0]) <= 64 else [])
    # BR 7.1.2.7.11: digitalSignature only, RSA keys too (keyEncipherment serves RSA key
    # transport, which TLS 1.3 and ECDHE suites do not use; the BRs advise against it)
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(last_second)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=not len(subject))
            # no subjectKeyIdentifier: BR 7.1.2.7.6 advises against it in subscriber certificates
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))
