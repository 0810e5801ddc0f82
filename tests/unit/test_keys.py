"""Keys, CSRs, customer CSR checks and the key vault, cross-checked with the openssl CLI."""
from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from adapters.base import BadInput, DistinguishedName
from adapters.crypto.keys import (KeyVault, check_customer_csr, generate_key,
                           make_csr, public_key_matches)
from support.ca import DN, NAMES, openssl_csr, run


@pytest.fixture(scope="module")
def rsa_key() -> bytes:
    return generate_key()


def test_provider_csr_verifies_with_openssl_and_carries_the_order_dn(tmp_path, rsa_key):
    csr = tmp_path / "order.csr"
    csr.write_text(make_csr(rsa_key, DN, NAMES))

    run("openssl", "req", "-verify", "-noout", "-in", str(csr))
    text = run("openssl", "req", "-text", "-noout", "-in", str(csr)).stdout.decode()

    assert "sha256WithRSAEncryption" in text
    assert "Public-Key: (2048 bit)" in text
    for part in ("C = JP", "ST = Tokyo", "L = Shinjuku-ku", "O = Example Trading K.K.",
                 "OU = Web Operations", "CN = www.example.jp"):
        assert part in text
    assert "DNS:www.example.jp, DNS:example.jp" in text


def test_csr_without_unit_leaves_ou_out(tmp_path, rsa_key):
    dn = DistinguishedName("www.example.jp", "Example K.K.", "Yokohama-shi", "Kanagawa", "JP")
    csr = x509.load_pem_x509_csr(make_csr(rsa_key, dn, NAMES).encode())
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME) == []
    assert csr.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "Yokohama-shi"


@pytest.mark.parametrize("algorithm, kind, size", [
    ("rsa2048", rsa.RSAPrivateKey, 2048),
    ("rsa3072", rsa.RSAPrivateKey, 3072),
    ("p256", ec.EllipticCurvePrivateKey, 256),
    ("p384", ec.EllipticCurvePrivateKey, 384),
])
def test_generated_keys_are_unencrypted_pkcs8_of_the_configured_kind(algorithm, kind, size):
    pem = generate_key(algorithm)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, kind) and key.key_size == size


def test_ecdsa_csr_verifies_with_openssl(tmp_path):
    csr = tmp_path / "ec.csr"
    csr.write_text(make_csr(generate_key("p256"), DN, NAMES))
    run("openssl", "req", "-verify", "-noout", "-in", str(csr))
    assert "ecdsa-with-SHA256" in run("openssl", "req", "-text", "-noout", "-in",
                                      str(csr)).stdout.decode()


def test_unknown_key_algorithm_is_refused():
    with pytest.raises(BadInput) as caught:
        generate_key("dsa1024")
    assert caught.value.field == "keys.algorithm"
    assert "dsa1024" in caught.value.message


def test_a_country_that_is_not_two_letters_is_refused(rsa_key):
    with pytest.raises(BadInput) as caught:
        make_csr(rsa_key, DistinguishedName("www.example.jp", "Ex", "Minato-ku", "Tokyo", "Japan"),
                 NAMES)
    assert caught.value.field == "country"


def test_international_names_go_in_as_a_labels(rsa_key):
    csr = x509.load_pem_x509_csr(make_csr(rsa_key, DN, ("www.例え.jp",)).encode())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.xn--r8jz45g.jp"]


# --- customer CSRs ------------------------------------------------------------------


def refusal(data: bytes, names=NAMES) -> BadInput:
    with pytest.raises(BadInput) as caught:
        check_customer_csr(data, names, names_from_application=False)
    assert caught.value.field == "csr"
    return caught.value


def test_good_customer_csr_is_accepted_as_pem_and_as_der(tmp_path):
    pem = openssl_csr(tmp_path, "good")
    accepted = check_customer_csr(pem, NAMES, names_from_application=False)
    assert accepted == pem.decode()
    der = run("openssl", "req", "-in", str(tmp_path / "good.csr"), "-outform", "DER").stdout
    assert check_customer_csr(der, NAMES, names_from_application=False) == accepted


def test_customer_ecdsa_p256_csr_is_accepted(tmp_path):
    pem = openssl_csr(tmp_path, "ec", newkey="ec:P-256")
    accepted = check_customer_csr(pem, tuple(reversed(NAMES)), names_from_application=False)
    assert accepted.startswith("-----BEGIN CERTIFICATE REQUEST-----")


def test_sha1_csr_is_refused(tmp_path):
    error = refusal(openssl_csr(tmp_path, "sha1", digest="-sha1"))
    assert error.message == "CSR signature algorithm sha1 refused: use SHA-256"


def test_md5_csr_is_refused(tmp_path):
    error = refusal(openssl_csr(tmp_path, "md5", digest="-md5"))
    assert error.message == "CSR signature algorithm md5 refused: use SHA-256"


def test_rsa_1024_csr_is_refused(tmp_path):
    error = refusal(openssl_csr(tmp_path, "weak", newkey="rsa:1024"))
    assert "RSA 1024 bits refused" in error.message


def test_p521_csr_is_refused(tmp_path):
    error = refusal(openssl_csr(tmp_path, "p521", newkey="ec:P-521"))
    assert "secp521r1 refused" in error.message


def test_csr_with_other_names_says_which(tmp_path):
    error = refusal(openssl_csr(tmp_path, "wrong", cn="www.example.jp",
                                sans=("www.example.jp", "shop.example.com")))
    assert "not in the order: shop.example.com" in error.message
    assert error.extra == ("shop.example.com",)


def test_junk_is_not_a_csr():
    assert refusal(b"hello, this is my certificate request").message == "not a PEM or DER CSR"
    assert refusal(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE "
                   b"REQUEST-----\n").message == "not a PEM or DER CSR"


def test_csr_with_a_broken_signature_is_refused(tmp_path):
    der = bytearray(openssl_csr(tmp_path, "tampered", der=True))
    der[-5] ^= 0xFF  # inside the signature value
    assert refusal(bytes(der)).message == "CSR signature does not verify"


def test_public_key_matches_only_the_certificates_own_key(rsa_key):
    key = serialization.load_pem_private_key(rsa_key, None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.jp")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert public_key_matches(rsa_key, pem)
    assert not public_key_matches(generate_key("p256"), pem)


# --- the vault ----------------------------------------------------------------------


def test_vault_round_trip_and_the_ciphertext_shows_no_key(rsa_key):
    vault = KeyVault(KeyVault.new_master_key())
    blob = vault.encrypt(rsa_key)
    assert b"PRIVATE KEY" not in blob
    assert vault.decrypt(blob) == rsa_key


def test_another_master_key_cannot_decrypt(rsa_key):
    blob = KeyVault(KeyVault.new_master_key()).encrypt(rsa_key)
    with pytest.raises(BadInput) as caught:
        KeyVault(KeyVault.new_master_key()).decrypt(blob)
    assert caught.value.field == "master_key"


def test_vault_repr_hides_the_master_key():
    master = KeyVault.new_master_key()
    vault = KeyVault(master)
    assert master.decode() not in repr(vault) and master.decode() not in str(vault)


def test_master_key_file_is_created_0600_and_loads(tmp_path, rsa_key, monkeypatch):
    monkeypatch.delenv("CERTFLOW_MASTER_KEY", raising=False)
    path = tmp_path / "master.key"
    blob = KeyVault.create_file(str(path)).encrypt(rsa_key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyVault.load(str(path)).decrypt(blob) == rsa_key
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no temp file left


def test_existing_master_key_file_is_never_overwritten(tmp_path):
    path = tmp_path / "master.key"
    KeyVault.create_file(str(path))
    before = path.read_bytes()
    with pytest.raises(BadInput) as caught:
        KeyVault.create_file(str(path))
    assert caught.value.field == "master_key" and path.read_bytes() == before


def test_world_readable_master_key_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("CERTFLOW_MASTER_KEY", raising=False)
    path = tmp_path / "master.key"
    KeyVault.create_file(str(path))
    os.chmod(path, 0o644)
    with pytest.raises(BadInput) as caught:
        KeyVault.load(str(path))
    assert caught.value.field == "master_key"
    assert "0644" in caught.value.message and "0600" in caught.value.message
    assert path.read_text().strip() not in caught.value.message


def test_master_key_from_the_environment_comes_first(tmp_path, rsa_key, monkeypatch):
    master = KeyVault.new_master_key()
    monkeypatch.setenv("CERTFLOW_MASTER_KEY", master.decode())
    blob = KeyVault(master).encrypt(rsa_key)
    assert KeyVault.load(str(tmp_path / "absent.key")).decrypt(blob) == rsa_key


def test_no_master_key_anywhere_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("CERTFLOW_MASTER_KEY", raising=False)
    with pytest.raises(BadInput) as caught:
        KeyVault.load(str(tmp_path / "absent.key"))
    assert caught.value.field == "master_key"
    with pytest.raises(BadInput):
        KeyVault.load(None)


def test_malformed_master_key_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("CERTFLOW_MASTER_KEY", "not-a-real-key-s3cr3t")
    with pytest.raises(BadInput) as caught:
        KeyVault.load(None)
    assert "s3cr3t" not in caught.value.message
