"""Comparing public keys by their SubjectPublicKeyInfo DER: the one way certflow tells
whether a certificate, a CSR and a private key belong together."""
from __future__ import annotations

from cryptography.hazmat.primitives import serialization


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def same_public_key(a, b) -> bool:
    """True when two public keys (of certificates, CSRs or private keys) are the same key."""
    return spki_der(a) == spki_der(b)
