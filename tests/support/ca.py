"""Helpers for the keys / local CA / x509check tests: collecting Notifiers, openssl-made
CSRs, applications, a worker for multi-process tests, and (as a plugin) the ``rsa_csr``
fixture."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.base import Application, DistinguishedName, Notice, TransientError
from adapters.crypto.keys import generate_key, make_csr
from adapters.crypto.x509check import verify_issued
from workflow.clock import SystemClock

if TYPE_CHECKING:
    from adapters.base import Issued
    from adapters.ca.local import LocalCA
    from workflow.clock import MovableClock

NAMES = ("www.example.jp", "example.jp")
DN = DistinguishedName(common_name="www.example.jp", organization="Example Trading K.K.",
                       locality="Shinjuku-ku", prefecture="Tokyo", country="JP",
                       unit="Web Operations")


@pytest.fixture(scope="module")
def rsa_csr() -> str:
    return make_csr(generate_key(), DN, NAMES)


def place(webroot: Path, challenge, content: str | None = None) -> None:
    path = webroot / challenge.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((challenge.content if content is None else content) + "\n")


def assert_verifies(ca: LocalCA, issued: Issued, csr: str, clock: MovableClock, names=NAMES):
    return verify_issued(issued.certificate_pem, issued.chain_pem, csr_pem=csr, names=names,
                         trust_roots=[ca.root_pem()], now=clock.now())


@dataclass
class CollectingNotifier:
    """A Notifier that keeps what it was asked to send (optionally failing first)."""

    sent: list[Notice] = field(default_factory=list)
    fail_next: int = 0

    def send(self, notice: Notice) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise TransientError("mail server unavailable", retry_after=30)
        self.sent.append(notice)


class FileNotifier:
    """A Notifier whose sends survive across processes: one line per Notice in a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def send(self, notice: Notice) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{notice.idempotency_key} {notice.context['url']}\n")


def token_from(notice: Notice) -> str:
    return notice.context["url"].rsplit("?token=", 1)[1]


def application(csr_pem: str, *, key: str = "order-1:3:submit", validation: str = "file",
                names: tuple[str, ...] = NAMES, **extra) -> Application:
    if validation in ("email", "email-whois"):
        extra.setdefault("approver", "admin@example.jp")
        extra.setdefault("deadline_at", datetime.now(timezone.utc) + timedelta(days=10))
    return Application(order_id=key.split(":")[0], idempotency_key=key, common_name=names[0],
                       names=names, csr_pem=csr_pem, validation=validation, **extra)


def run(*args: str, cwd: Path | None = None, input: bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, input=input, capture_output=True, check=check,
                          timeout=120)


def openssl_csr(directory: Path, name: str, *, newkey: str = "rsa:2048", digest: str = "-sha256",
                cn: str = "www.example.jp", sans: tuple[str, ...] = NAMES,
                der: bool = False) -> bytes:
    """A customer CSR made with the openssl CLI, as the file bytes (PEM or DER)."""
    out = directory / f"{name}.csr"
    args = ["openssl", "req", "-new", "-nodes", "-keyout", str(directory / f"{name}.key"),
            "-subj", f"/C=JP/ST=Tokyo/L=Shinjuku-ku/O=Example Trading K.K./CN={cn}",
            digest, "-out", str(out), "-outform", "DER" if der else "PEM"]
    if newkey.startswith("ec:"):
        args[3:3] = ["-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{newkey[3:]}"]
    else:
        args[3:3] = ["-newkey", newkey]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in sans)]
    run(*args)
    return out.read_bytes()


def submit_from_another_process(directory: str, master_key: bytes, csr_pem: str,
                                mail_log: str, barrier, results) -> None:
    """Worker: a fresh LocalCA on ``directory`` submits the same two applications
    (file and mail validation) as its siblings, all released at once by ``barrier``."""
    from adapters.crypto.keys import KeyVault
    from adapters.ca.local import LocalCA

    ca = LocalCA(directory, KeyVault(master_key), SystemClock().now,
                 notifier=FileNotifier(mail_log))
    barrier.wait(timeout=120)
    ca.ensure()
    ids = []
    for app in (application(csr_pem, key="order-7:2:submit", validation="file"),
                application(csr_pem, key="order-8:2:submit", validation="email")):
        for _ in range(600):
            try:
                ids.append(ca.submit(app).application_id)
                break
            except TransientError:  # a sibling holds the approval-mail claim
                time.sleep(0.1)
    results.put((os.getpid(), ids, ca.root_pem()))


def manual_root(tmp_path):
    """A CA of the manual CA's kind (another company's): its key and root, root.pem written."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Manual Test Root")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def manual_leaf(ca_key, ca_cert, public_key, names, days: float = 90):
    """A server certificate from that CA (PEM bytes), living ``days``."""
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())).public_bytes(serialization.Encoding.PEM)
