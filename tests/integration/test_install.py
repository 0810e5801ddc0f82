"""Installing a certificate on a group of real nginx servers: all or nothing, checked by
handshake."""
from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.base import Bundle, Target, TransientError
from adapters.install.local import LocalInstaller
from support.install import CN, assert_installed, snapshot
from support.nginx import wait_for_fingerprint, write_bundle


def fingerprint(bundle: Bundle) -> str:
    der = x509.load_pem_x509_certificate(bundle.certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    return hashlib.sha256(der).hexdigest()


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
