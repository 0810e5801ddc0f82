"""``LocalCA.check()`` for ``certflow doctor``: root and intermediate readable, their keys
open with the master key and fit their certificates, neither expires soon. Reads only."""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from adapters.abilities import Health
from adapters.base import BadInput, PermanentError
from adapters.common.spki import same_public_key

#: the CA's certificates should outlive this; less is a note, not a failure
EXPIRY_NOTE = timedelta(days=60)


def check_local_ca(directory: str, vault, now: datetime) -> Health:
    notes = []
    for name in ("root", "intermediate"):
        path = os.path.join(directory, f"{name}.pem")
        sealed_path = os.path.join(directory, f"{name}.key.enc")
        try:
            cert = x509.load_pem_x509_certificate(_read(path, f"{name} certificate"))
        except ValueError:
            raise PermanentError(f"local CA {name} certificate is not a PEM certificate",
                                 path=path) from None
        try:
            key_pem = vault.decrypt(_read(sealed_path, f"{name} key"))
        except BadInput:
            raise BadInput("keys.master_key", f"local CA {name} key cannot be decrypted: "
                           f"{sealed_path} does not open with this master key",
                           path=sealed_path) from None
        key = load_ca_key(key_pem, name, sealed_path)
        if not same_public_key(key.public_key(), cert.public_key()):
            raise PermanentError(f"local CA {name} key does not match its certificate",
                                 path=sealed_path)
        expires = cert.not_valid_after_utc
        if expires <= now:
            raise PermanentError(f"local CA {name} certificate expired on {expires:%Y-%m-%d}",
                                 path=path)
        if expires - now < EXPIRY_NOTE:
            notes.append(f"{name} expires {expires:%Y-%m-%d}")
    return Health(f"local CA in {directory}: root and intermediate readable, keys open with "
                  "the master key", "; ".join(notes) or None)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise PermanentError(f"local CA {what} unreadable: {path}: {exc.strerror} "
                             "(run `certflow init`)", path=path) from None


def load_ca_key(key_pem: bytes, name: str, path: str):
    """The CA's private key; a damaged or unsupported one is PermanentError (the
    cryptography exceptions stop here)."""
    try:
        return serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise PermanentError(f"local CA {name} key is damaged or unsupported: {path}",
                             path=path) from exc
