"""Checking what a CA sends back: key, names, validity and chain to the trust roots."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from adapters.base import BadInput
from adapters.crypto.keys import KeyVault, generate_key, make_csr
from adapters.ca.local import LocalCA
from adapters.crypto.x509check import cert_info, parse_bundle, verify_issued
from support.ca import DN, NAMES, application, run
from workflow.clock import SystemClock

# openssl dates and checks certificates by the system clock
pytestmark = pytest.mark.wall_clock


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> LocalCA:
    ca = LocalCA(str(tmp_path_factory.mktemp("ca")), KeyVault(KeyVault.new_master_key()),
                 SystemClock().now)
    ca.ensure()
    return ca


@pytest.fixture(scope="module")
def order_csr() -> str:
    return make_csr(generate_key(), DN, NAMES)


def issue(ca: LocalCA, csr: str, webroot: Path, key: str, names=NAMES):
    """Run a file-validated application through the local CA; return (cert, chain)."""
    app = application(csr, key=key, names=names, webroot=str(webroot))
    challenge = ca.submit(app).challenges[0]
    (webroot / challenge.name).parent.mkdir(parents=True, exist_ok=True)
    (webroot / challenge.name).write_text(challenge.content + "\n")
    issued = ca.poll(ca.submit(app).application_id, app)
    return issued.certificate_pem, issued.chain_pem


@pytest.fixture(scope="module")
def issued(ca, order_csr, tmp_path_factory):
    return issue(ca, order_csr, tmp_path_factory.mktemp("webroot"), "order-1:3:submit")


def refused(cert: str, chain: str, csr: str, ca: LocalCA, now, names=NAMES, roots=None) -> str:
    with pytest.raises(BadInput) as caught:
        verify_issued(cert, chain, csr_pem=csr, names=names,
                      trust_roots=roots if roots is not None else [ca.root_pem()], now=now)
    assert caught.value.field in ("certificate", "trust_roots")
    return caught.value.message


def test_local_ca_certificate_is_accepted_and_described(ca, issued, order_csr, clock, tmp_path):
    cert, chain = issued
    info = verify_issued(cert, chain, csr_pem=order_csr, names=NAMES,
                         trust_roots=[ca.root_pem()], now=clock.now())
    (tmp_path / "leaf.pem").write_text(cert)
    openssl = lambda *a: run("openssl", "x509", "-noout", *a, "-in",  # noqa: E731
                             str(tmp_path / "leaf.pem")).stdout.decode().strip()
    assert info.sha256 == openssl("-fingerprint", "-sha256").split("=", 1)[1] \
        .replace(":", "").lower()
    assert info.serial == openssl("-serial").split("=", 1)[1].lower()
    assert info.names == NAMES
    assert info.not_before <= clock.now() < info.not_after
    assert cert_info(cert) == info


def test_openssl_agrees_the_certificate_chains_to_the_root(ca, issued, tmp_path):
    cert, chain = issued
    (tmp_path / "root.pem").write_text(ca.root_pem())
    (tmp_path / "chain.pem").write_text(chain)
    (tmp_path / "leaf.pem").write_text(cert)
    result = run("openssl", "verify", "-CAfile", str(tmp_path / "root.pem"),
                 "-untrusted", str(tmp_path / "chain.pem"), str(tmp_path / "leaf.pem"))
    assert result.stdout.decode().strip().endswith(": OK")


def test_certificate_for_another_key_is_refused(ca, order_csr, clock, tmp_path):
    other_csr = make_csr(generate_key("p256"), DN, NAMES)
    cert, chain = issue(ca, other_csr, tmp_path, "order-2:3:submit")
    assert refused(cert, chain, order_csr, ca, clock.now()) == \
        "certificate public key does not match the order's key"


def test_certificate_missing_an_order_name_is_refused(ca, issued, order_csr, clock):
    cert, chain = issued
    message = refused(cert, chain, order_csr, ca, clock.now(), names=NAMES + ("shop.example.jp",))
    assert message == "certificate names do not cover the order: missing shop.example.jp"


def test_expired_and_not_yet_valid_certificates_are_refused(ca, issued, order_csr):
    cert, chain = issued
    info = cert_info(cert)
    assert "expired" in refused(cert, chain, order_csr, ca, info.not_after + timedelta(days=1))
    assert "not yet valid" in refused(cert, chain, order_csr, ca,
                                      info.not_before - timedelta(days=1))


def test_certificate_from_an_untrusted_root_is_refused(issued, order_csr, clock, ca):
    cert, chain = issued
    stranger = trustme.CA().cert_pem.bytes().decode()
    assert "does not chain to a trusted root" in refused(cert, chain, order_csr, ca, clock.now(),
                                                          roots=[stranger])


def test_certificate_without_its_intermediate_does_not_chain(ca, issued, order_csr, clock):
    cert, _ = issued
    assert "does not chain to a trusted root" in refused(cert, "", order_csr, ca, clock.now())


def test_no_trust_roots_is_refused(ca, issued, order_csr, clock):
    cert, chain = issued
    assert "no trust roots" in refused(cert, chain, order_csr, ca, clock.now(), roots=[])


def test_fullchain_in_either_order_is_split_into_leaf_and_chain(ca, issued, order_csr, clock):
    cert, chain = issued
    assert parse_bundle(cert + chain) == (cert, chain)
    assert parse_bundle(chain + cert) == (cert, chain)
    info = verify_issued(cert + chain, "", csr_pem=order_csr, names=NAMES,
                         trust_roots=[ca.root_pem()], now=clock.now())
    assert info == cert_info(cert)


def test_junk_is_not_a_certificate(ca, order_csr, clock):
    assert refused("no certificate here", "", order_csr, ca, clock.now()) == \
        "no PEM certificate found"


def test_junk_inside_pem_armour_is_refused(ca, order_csr, clock):
    junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert "malformed PEM certificate" in refused(junk, "", order_csr, ca, clock.now())


def openssl_ca_issue(directory: Path, csr_pem: str, names=NAMES) -> tuple[str, str]:
    """An independent CA made with the openssl CLI signs ``csr_pem``: (leaf, root)."""
    d = str(directory)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{d}/root.key", "-out", f"{d}/root.pem", "-days", "30",
        "-subj", "/O=Other CA/CN=Other Root", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (directory / "order.csr").write_text(csr_pem)
    (directory / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join('DNS:' + n for n in names)}\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    run("openssl", "x509", "-req", "-in", f"{d}/order.csr", "-CA", f"{d}/root.pem",
        "-CAkey", f"{d}/root.key", "-CAcreateserial", "-days", "10", "-sha256",
        "-extfile", f"{d}/leaf.ext", "-out", f"{d}/leaf.pem")
    return (directory / "leaf.pem").read_text(), (directory / "root.pem").read_text()


def test_a_certificate_from_an_openssl_made_ca_is_checked_the_same_way(order_csr, tmp_path, ca):
    leaf, root = openssl_ca_issue(tmp_path, order_csr)
    now = SystemClock().now()  # openssl dated the certificate from the real clock, just now
    info = verify_issued(leaf, "", csr_pem=order_csr, names=NAMES, trust_roots=[root], now=now)
    assert info.names == NAMES
    assert "does not chain to a trusted root" in refused(leaf, "", order_csr, ca, now)
