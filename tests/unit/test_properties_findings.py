"""The smallest inputs the property tests found that once crashed (exit 1), kept as
plain regression tests (issue 16 #2, #9, #18, #20): each must now be refused, exit 2,
with nothing written."""
from __future__ import annotations

import base64
import ipaddress
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.helpers import ORDER, configure, place_args
from support.inproc import invoke, snapshot
from workflow.effects.daemon import Daemon

NAMES = ("www.example.jp", "example.jp")


def _csr(*general: x509.GeneralName) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])]))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in NAMES] + list(general)), critical=False)
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def _refused_without_writing(config, *args) -> None:
    before = snapshot(config)
    res = invoke(config, *args)
    assert res.exit_code == 2, res.describe()
    assert snapshot(config) == before


@pytest.fixture
def awaiting_csr(engine, workspace) -> str:
    order = engine.place(**{**ORDER, "plan": "ex-cloud", "contract": "C-3001"})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "awaiting_csr"
    return order.id


@pytest.mark.parametrize("value", ["", "config.toml", "/dev/null"])
def test_a_store_path_that_is_no_database_exits_2(workspace, value):
    snapshot(workspace)  # learns where the store is while the config still says so
    configure(workspace, {"store.path": value})
    _refused_without_writing(workspace, "order", "place", *place_args())


def test_a_lease_seconds_too_large_exits_2(workspace):
    snapshot(workspace)  # learns where the store is while the config still says so
    configure(workspace, {"effects.lease_seconds": 2 ** 63 - 1})
    assert invoke(workspace, "order", "place", *place_args()).exit_code == 2
    _refused_without_writing(workspace, "daemon", "--once")


def test_a_certificate_with_a_damaged_san_exits_2(engine, workspace, tmp_path):
    order = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])])
    now = datetime.now(timezone.utc)
    der = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(1).not_valid_before(now)
           .not_valid_after(now + timedelta(days=30))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAMES[0])]), False)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    at = der.rindex(NAMES[0].encode())
    body = base64.encodebytes(der[:at] + b"\x80" + der[at + 1:]).decode("ascii")
    (tmp_path / "bad.pem").write_text(f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n")
    _refused_without_writing(workspace, "order", "issue", order.id, str(tmp_path / "bad.pem"))


def test_a_csr_with_version_2_exits_2(awaiting_csr, workspace, tmp_path):
    der = _csr()
    at = der.index(b"\x02\x01\x00")
    (tmp_path / "v2.csr").write_bytes(der[:at] + b"\x02\x01\x02" + der[at + 3:])
    _refused_without_writing(workspace, "order", "csr", awaiting_csr, str(tmp_path / "v2.csr"))


@pytest.mark.parametrize("extra", [x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
                                   x509.RFC822Name("admin@example.jp")], ids=["ip", "email"])
def test_a_csr_with_an_ip_or_email_san_is_refused(awaiting_csr, workspace, tmp_path, extra):
    (tmp_path / "extra.csr").write_bytes(_csr(extra))
    _refused_without_writing(workspace, "order", "csr", awaiting_csr, str(tmp_path / "extra.csr"))


def test_a_master_key_path_that_is_a_directory_exits_2(workspace):
    snapshot(workspace)  # learns where the store is while the config still says so
    configure(workspace, {"keys.master_key": ""})   # the workspace directory itself
    _refused_without_writing(workspace, "order", "place", *place_args())


def test_a_ca_dir_that_is_a_file_exits_2(workspace):
    snapshot(workspace)  # learns where the store is while the config still says so
    configure(workspace, {"ca.dir": "config.toml"})
    res = invoke(workspace, "order", "place", *place_args())
    assert res.exit_code == 2 and "ca.dir" in res.stderr, res.describe()
