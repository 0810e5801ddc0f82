"""Installing a certificate on a group of web servers: all or nothing, checked by handshake."""
from __future__ import annotations

import hashlib
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.base import BadInput, Bundle, Target, TransientError
from adapters.install.deliver import delivery_attachments
from adapters.install.local import LocalInstaller, served_fingerprint
from support.nginx import wait_for_fingerprint, write_bundle

CN = "www.example.jp"
FILES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")


def fingerprint(bundle: Bundle) -> str:
    der = x509.load_pem_x509_certificate(bundle.certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    return hashlib.sha256(der).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[str, bytes | None, int]]:
    """Every entry under root: kind, content (files) and permission bits."""
    entries = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        kind = "dir" if path.is_dir() else "file"
        content = path.read_bytes() if kind == "file" else None
        entries[str(path.relative_to(root))] = (kind, content, stat.S_IMODE(info.st_mode))
    return entries


def assert_installed(server_dir: Path, bundle: Bundle) -> None:
    directory = server_dir / bundle.common_name
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)  # no temp files
    assert (directory / "cert.pem").read_text().strip() == bundle.certificate_pem.strip()
    assert (directory / "chain.pem").read_text().strip() == bundle.chain_pem.strip()
    assert (directory / "fullchain.pem").read_text().strip() == bundle.fullchain_pem.strip()
    assert (directory / "privkey.pem").read_bytes() == bundle.private_key_pem
    for name in FILES:
        mode = stat.S_IMODE((directory / name).stat().st_mode)
        assert mode == (0o600 if name == "privkey.pem" else 0o644), name
    key = serialization.load_pem_private_key((directory / "privkey.pem").read_bytes(), None)
    certificate = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    assert key.public_key() == certificate.public_key()


@pytest.fixture
def servers(tmp_path) -> Path:
    root = tmp_path / "servers"
    root.mkdir()
    return root


# --- (a) one broken server of three ---------------------------------------------------


def break_by_file(server_dir: Path) -> None:
    shutil.rmtree(server_dir)
    server_dir.write_text("a file where the server directory should be\n")


def repair_file(server_dir: Path) -> None:
    server_dir.unlink()
    server_dir.mkdir()


def break_by_key_directory(server_dir: Path) -> None:
    key = server_dir / CN / "privkey.pem"
    key.unlink()
    key.mkdir()
    (key / "stray").write_text("x")


def repair_key_directory(server_dir: Path) -> None:
    shutil.rmtree(server_dir / CN / "privkey.pem")


@pytest.mark.parametrize(
    "broken, breakage, repair",
    [
        ("web2", break_by_file, repair_file),
        ("web3", break_by_key_directory, repair_key_directory),
    ],
    ids=["server-dir-is-a-file", "key-path-is-a-directory"],
)
def test_broken_server_changes_nothing_and_the_repaired_group_installs(
    servers, pki, nginx_factory, broken, breakage, repair
):
    old, new = pki.bundle(CN), pki.bundle(CN)
    dirs = {name: servers / name for name in ("web1", "web2", "web3")}
    nginx = nginx_factory(dirs["web1"], old)
    write_bundle(dirs["web2"], old)
    write_bundle(dirs["web3"], old)
    breakage(dirs[broken])
    targets = [
        Target("web1", str(dirs["web1"]), reload=nginx.reload_command, verify=nginx.host_port),
        Target("web2", str(dirs["web2"])),
        Target("web3", str(dirs["web3"])),
    ]
    before = snapshot(servers)
    installer = LocalInstaller(verify_attempts=5)

    with pytest.raises(TransientError) as failure:
        installer.install(new, targets)

    assert failure.value.target == broken
    assert f"server {broken} ({dirs[broken]})" in str(failure.value)
    assert "PRIVATE KEY" not in str(failure.value)
    assert snapshot(servers) == before  # nothing changed, no temp files
    subprocess.run(shlex.split(nginx.reload_command), check=True)
    assert wait_for_fingerprint(nginx.host_port, CN, fingerprint(old)) == fingerprint(old)

    repair(dirs[broken])
    installer.install(new, targets)

    for server_dir in dirs.values():
        assert_installed(server_dir, new)
    assert wait_for_fingerprint(nginx.host_port, CN, fingerprint(new)) == fingerprint(new)

    installer.install(new, targets)  # a retried effect is harmless
    for server_dir in dirs.values():
        assert_installed(server_dir, new)


# --- (b) reload failure ---------------------------------------------------------------


WAIT_THEN_FAIL = """\
import os, sys, time
from adapters.base import TransientError
from adapters.install.tls_probe import served_fingerprint
log, host_port, server_name, new = sys.argv[1:]
first = not os.path.exists(log)
with open(log, "a") as out:
    out.write("reload\\n")
deadline = time.monotonic() + 30
while first and time.monotonic() < deadline:  # until web1 really serves the new certificate
    try:
        if served_fingerprint(host_port, server_name, 5) == new:
            break
    except TransientError:
        pass
    time.sleep(0.1)
print("nginx: [emerg] web2 config broken", file=sys.stderr)
sys.exit(3)
"""


def test_failed_reload_rolls_back_every_server(tmp_path, servers, pki, nginx_factory):
    old, new = pki.bundle(CN), pki.bundle(CN)
    nginx = nginx_factory(servers / "web1", old)
    write_bundle(servers / "web2", old)
    # web2's reload fails only once web1 has picked up the new files, so the rollback
    # must reload web1 again for it to serve the old certificate.
    script = tmp_path / "reload_web2.py"
    script.write_text(WAIT_THEN_FAIL)
    reloads = tmp_path / "web2-reloads.log"
    failing_reload = shlex.join(
        [sys.executable, str(script), str(reloads), nginx.host_port, CN, fingerprint(new)]
    )
    targets = [
        Target("web1", str(servers / "web1"), reload=nginx.reload_command, verify=nginx.host_port),
        Target("web2", str(servers / "web2"), reload=failing_reload),
    ]
    before = snapshot(servers)

    with pytest.raises(TransientError) as failure:
        LocalInstaller().install(new, targets)

    assert failure.value.target == "web2"
    assert "exited 3" in str(failure.value) and "web2 config broken" in str(failure.value)
    assert snapshot(servers) == before
    assert wait_for_fingerprint(nginx.host_port, CN, fingerprint(old)) == fingerprint(old)
    assert reloads.read_text().splitlines() == ["reload", "reload"]  # again after rollback


def test_reload_command_that_cannot_run_leaves_files_as_they_were(servers, pki):
    old, new = pki.bundle(CN), pki.bundle(CN)
    write_bundle(servers / "web1", old)
    before = snapshot(servers)
    target = Target("web1", str(servers / "web1"), reload="/nonexistent/reload-nginx")

    with pytest.raises(TransientError, match=r"server web1 .* could not run"):
        LocalInstaller().install(new, [target])

    assert snapshot(servers) == before


# --- (c) verify mismatch --------------------------------------------------------------


def test_server_serving_another_certificate_fails_the_install(tmp_path, servers, pki, nginx_factory):
    old, new = pki.bundle(CN), pki.bundle(CN)
    nginx = nginx_factory(tmp_path / "nginx-docroot", old)  # not where we install
    write_bundle(servers / "web2", old)
    targets = [
        Target("web1", str(servers / "web1"), reload=nginx.reload_command, verify=nginx.host_port),
        Target("web2", str(servers / "web2")),
    ]
    before = snapshot(servers)  # web1 does not exist yet

    with pytest.raises(TransientError) as failure:
        LocalInstaller(verify_attempts=2).install(new, targets)

    assert str(failure.value) == (
        f"server web1 {nginx.host_port} serves certificate {fingerprint(old)[:16]}, "
        f"expected {fingerprint(new)[:16]}"
    )
    assert failure.value.found == fingerprint(old)
    assert snapshot(servers) == before  # web1 is not left behind, web2 is old again


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
