"""Installing a certificate without a web server: refused names and mismatched keys, a first
install's files and modes, reloads that cannot run and verify addresses where nothing
listens (nothing changed), and the delivery attachments."""
from __future__ import annotations

import pytest
from cryptography import x509

from adapters.base import BadInput, Bundle, Target, TransientError
from adapters.install.deliver import delivery_attachments
from adapters.install.local import LocalInstaller, served_fingerprint
from support.install import CN, assert_installed, snapshot
from support.nginx import write_bundle


# --- (b) reload failure ---------------------------------------------------------------


def test_reload_command_that_cannot_run_leaves_files_as_they_were(servers, pki):
    old, new = pki.bundle(CN), pki.bundle(CN)
    write_bundle(servers / "web1", old)
    before = snapshot(servers)
    target = Target("web1", str(servers / "web1"), reload="/nonexistent/reload-nginx")

    with pytest.raises(TransientError, match=r"server web1 .* could not run"):
        LocalInstaller().install(new, [target])

    assert snapshot(servers) == before


# --- (c) verify mismatch --------------------------------------------------------------


def test_unreachable_verify_address_fails_the_install(servers, pki, closed_port):
    port = closed_port
    (servers / "web1").mkdir()
    before = snapshot(servers)
    target = Target("web1", str(servers / "web1"), verify=f"127.0.0.1:{port}")

    with pytest.raises(TransientError, match=r"server web1 127\.0\.0\.1:\d+: TLS handshake"):
        LocalInstaller(verify_attempts=1, verify_timeout=2).install(pki.bundle(CN), [target])

    assert snapshot(servers) == before


# --- (d) bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "common_name", ["../escape", "..", "a/b", "/etc", "", ".hidden", "*.example.jp", "a\x00b", "x" * 300]
)
def test_common_name_that_is_not_a_plain_directory_name_is_refused(tmp_path, servers, pki, common_name):
    good = pki.bundle(CN)
    bundle = Bundle(common_name, good.certificate_pem, good.chain_pem, good.private_key_pem)
    (servers / "web1").mkdir()
    before = snapshot(tmp_path)

    with pytest.raises(BadInput) as refused:
        LocalInstaller().install(bundle, [Target("web1", str(servers / "web1"))])

    assert refused.value.field == "common_name"
    assert snapshot(tmp_path) == before


def test_key_that_does_not_match_the_certificate_is_refused(servers, pki):
    first, second = pki.bundle(CN), pki.bundle(CN)
    mixed = Bundle(CN, first.certificate_pem, first.chain_pem, second.private_key_pem)
    write_bundle(servers / "web1", second)
    before = snapshot(servers)

    with pytest.raises(BadInput) as refused:
        LocalInstaller().install(mixed, [Target("web1", str(servers / "web1"))])

    assert refused.value.field == "private_key"
    assert "PRIVATE KEY" not in str(refused.value)
    assert snapshot(servers) == before


def test_first_install_creates_the_directories_and_a_private_key_only_root_reads(servers, pki):
    bundle = pki.bundle(CN)  # servers/web1 does not exist yet

    LocalInstaller().install(bundle, [Target("web1", str(servers / "web1"))])

    assert_installed(servers / "web1", bundle)
    assert "PRIVATE KEY" not in repr(bundle)



def test_a_target_directory_another_install_made_meanwhile_is_used_not_an_error(
        servers, pki, monkeypatch):
    """Two workers installing two sites of one new target both find it missing: the one
    that loses the mkdir race installs into the winner's directory (it failed at stage
    with "File exists" and waited for a retry)."""
    import adapters.install.local as local
    target_dir = servers / "web1"
    real_mkdir = local.os.mkdir

    def raced(path, mode=0o777):
        if path == str(target_dir) and not target_dir.exists():
            real_mkdir(path, mode)  # the other worker, just before us
        real_mkdir(path, mode)

    monkeypatch.setattr(local.os, "mkdir", raced)
    bundle = pki.bundle(CN)
    LocalInstaller().install(bundle, [Target("web1", str(target_dir))])
    assert_installed(target_dir, bundle)

def test_served_fingerprint_of_a_closed_port_is_a_transient_error(closed_port):
    with pytest.raises(TransientError):
        served_fingerprint(f"127.0.0.1:{closed_port}", CN, timeout=2)


# --- (e) delivery ---------------------------------------------------------------------


def test_delivery_carries_certificate_and_intermediate_and_no_key(pki):
    bundle = pki.bundle(CN)

    attachments = delivery_attachments(bundle.certificate_pem, bundle.chain_pem, CN)

    assert [a.filename for a in attachments] == [f"{CN}.crt", f"{CN}.chain.crt"]
    certificate, chain = attachments
    assert x509.load_pem_x509_certificate(certificate.content) == x509.load_pem_x509_certificate(
        bundle.certificate_pem.encode()
    )
    assert x509.load_pem_x509_certificates(chain.content) == x509.load_pem_x509_certificates(
        bundle.chain_pem.encode()
    )
    assert all(b"PRIVATE KEY" not in a.content for a in attachments)


def test_delivery_with_fullchain_and_refusals(pki):
    bundle = pki.bundle(CN)
    names = [a.filename for a in delivery_attachments(
        bundle.certificate_pem, bundle.chain_pem, CN, include_fullchain=True)]
    assert names == [f"{CN}.crt", f"{CN}.chain.crt", f"{CN}.fullchain.crt"]

    key_pem = bundle.private_key_pem.decode()
    with pytest.raises(BadInput) as refused:
        delivery_attachments(bundle.certificate_pem, bundle.chain_pem + key_pem, CN)
    assert refused.value.field == "chain" and "BEGIN" not in str(refused.value)
    with pytest.raises(BadInput):
        delivery_attachments(bundle.certificate_pem, bundle.chain_pem, "../" + CN)
