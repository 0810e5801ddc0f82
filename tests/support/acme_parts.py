"""Helpers for the ACME adapter tests: the real clock, a stand-in key vault, CSRs and
applications."""
from __future__ import annotations

from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from adapters.base import Application
from workflow.clock import SystemClock

#: the real time: Pebble dates what it issues by the system clock
clock = SystemClock().now


class Vault:
    """Stands in for the engine's key vault: seal/unseal with a Fernet key."""

    def __init__(self) -> None:
        self._fernet = Fernet(Fernet.generate_key())

    def seal(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def unseal(self, data: bytes) -> bytes:
        return self._fernet.decrypt(data)


def make_csr(names: tuple[str, ...]) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                          critical=False)
           .sign(key, hashes.SHA256()))
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def application(names: tuple[str, ...], csr_pem: str, key: str,
                validation: str = "http-01") -> Application:
    return Application(order_id=f"order-{key}", idempotency_key=key, common_name=names[0],
                       names=names, csr_pem=csr_pem, validation=validation)
