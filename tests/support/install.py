"""Helpers for the installer tests: the files an install writes, a snapshot of a server
tree to prove nothing changed, and (as a plugin) the ``servers`` directory fixture."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.base import Bundle

CN = "www.example.jp"
FILES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")


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


def daemon_until(config: Path, order_id: str, states: set[str], passes: int = 6) -> dict:
    """Run `daemon --once` passes until the order is in one of ``states``; the order."""
    from support.helpers import cli_json, run_cli
    for _ in range(passes):
        run_cli(config, "daemon", "--once", check=True)
        order = cli_json(config, "order", "show", order_id)
        if order["state"] in states:
            return order
    return order
