"""Issue 8 end to end through the CLI: a load-balanced contract of three servers, one
broken, installed all-or-nothing and checked on a real nginx by TLS handshake."""
from __future__ import annotations

import hashlib
import json
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.base import Bundle
from adapters.install.tls_probe import served_fingerprint
from support import mailfolder
from support.nginx import Nginx, wait_for_fingerprint, write_bundle
from support.helpers import cli_json, configure, place_args, run_cli
from support.install import CN, FILES, daemon_until

CONTRACT = "C-5001"
SERVERS = ("web1", "web2", "web3")


@dataclass
class HASite:
    """A workspace whose contract CONTRACT installs on three servers; nginx serves web1."""

    config: Path
    dirs: dict[str, Path]
    nginx: Nginx
    old: Bundle


def fingerprint_of(certificate_pem: str | bytes) -> str:
    data = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
    der = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def server_files(server_dir: Path) -> dict[str, bytes] | bytes:
    """What a server holds for CN: its files by name, or the bytes of whatever sits
    where the server directory should be."""
    if server_dir.is_file():
        return server_dir.read_bytes()
    directory = server_dir / CN
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def add_ha_contract(config: Path, dirs: dict[str, Path], nginx: Nginx) -> None:
    """Three servers: web1 as a {path, reload, verify} table (the one nginx serves),
    web2 and web3 as plain directories."""
    first = {"path": str(dirs["web1"]), "reload": nginx.reload_command, "verify": nginx.host_port}
    table = "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in first.items()) + "}"
    servers = ", ".join([table] + [json.dumps(str(dirs[name])) for name in SERVERS[1:]])
    with open(config, "a") as fh:
        fh.write(f'\n[contracts."{CONTRACT}"]\nplan = "basic"\nstatus = "active"\n'
                 f"servers = [{servers}]\n")


@pytest.fixture
def ha_site(workspace, tmp_path, pki, nginx_factory) -> HASite:
    old = pki.bundle(CN)
    dirs = {name: tmp_path / "servers" / name for name in SERVERS}
    nginx = nginx_factory(dirs["web1"], old)
    for name in SERVERS[1:]:
        write_bundle(dirs[name], old)
    configure(workspace, {"effects.max_attempts": 3, "effects.backoff_seconds": 0})
    add_ha_contract(workspace, dirs, nginx)
    return HASite(workspace, dirs, nginx, old)


def test_broken_server_holds_the_order_and_after_repair_all_three_serve_the_issued_certificate(ha_site):
    ws, dirs, nginx = ha_site.config, ha_site.dirs, ha_site.nginx
    old_fingerprint = fingerprint_of(ha_site.old.certificate_pem)
    assert served_fingerprint(nginx.host_port, CN) == old_fingerprint
    shutil.rmtree(dirs["web3"])  # a file where web3's directory should be
    dirs["web3"].write_text("not a directory\n")
    before = {name: server_files(path) for name, path in dirs.items()}

    order = cli_json(ws, "order", "place", *place_args(contract=CONTRACT))
    run_cli(ws, "order", "pay", order["id"], check=True)
    held = daemon_until(ws, order["id"], {"on_hold", "installed"})

    assert held["state"] == "on_hold", held
    assert "web3" in held["reason"] and str(dirs["web3"]) in held["reason"], held["reason"]
    assert any("web3" in mailfolder.body(m) for m in mailfolder.to(ws, "ops@hosting.example"))
    assert {name: server_files(path) for name, path in dirs.items()} == before
    assert served_fingerprint(nginx.host_port, CN) == old_fingerprint

    dirs["web3"].unlink()  # repair: web3 is a directory with the old files again
    write_bundle(dirs["web3"], ha_site.old)
    run_cli(ws, "order", "resume", order["id"], check=True)
    done = daemon_until(ws, order["id"], {"installed", "on_hold"})

    assert done["state"] == "installed", done
    installed = {name: server_files(path) for name, path in dirs.items()}
    assert sorted(installed["web1"]) == sorted(FILES)  # no temporary files left
    assert installed["web2"] == installed["web1"] and installed["web3"] == installed["web1"]
    issued = done["certificate"]["sha256"]
    assert fingerprint_of(installed["web1"]["cert.pem"]) == issued != old_fingerprint
    key = serialization.load_pem_private_key(installed["web1"]["privkey.pem"], None)
    certificate = x509.load_pem_x509_certificate(installed["web1"]["cert.pem"])
    assert key.public_key() == certificate.public_key()
    for path in dirs.values():
        assert stat.S_IMODE((path / CN / "privkey.pem").stat().st_mode) == 0o600
    assert wait_for_fingerprint(nginx.host_port, CN, issued) == issued
