"""The ``KeyMaker`` ability over adapters.crypto.keys: one object the engine is handed,
instead of the module."""
from __future__ import annotations

from typing import Sequence

from adapters.base import DistinguishedName
from adapters.crypto import keys


class CryptoKeyMaker:
    """Keys and CSRs made locally with ``cryptography``."""

    def generate_key(self, algorithm: str) -> bytes:
        return keys.generate_key(algorithm)

    def make_csr(self, key_pem: bytes, dn: DistinguishedName, names: Sequence[str]) -> str:
        return keys.make_csr(key_pem, dn, tuple(names))

    def check_customer_csr(self, data: bytes | str, names: Sequence[str], *,
                           names_from_application: bool) -> str:
        return keys.check_customer_csr(data, tuple(names),
                                       names_from_application=names_from_application)

    def csr_command(self, names: Sequence[str], dn: DistinguishedName, *,
                    with_sans: bool) -> str:
        return keys.csr_command(tuple(names), dn, with_sans=with_sans)
