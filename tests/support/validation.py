"""Helpers for the challenge-publishing tests: HTTP challenges, fetching them back, and a
directory listing to check that nothing else was written."""
from __future__ import annotations

import secrets
from pathlib import Path

from adapters.base import Challenge
from adapters.validation.fetch import fetch_validation_file


def fetch_challenge(domain: str, name: str, connect_to: str | None, timeout: float) -> str | None:
    return fetch_validation_file(domain, name, connect_to, timeout)[0]


def http_challenge(domain: str = "www.example.jp", directory: str = "pki-validation",
                   name: str | None = None, content: str | None = None) -> Challenge:
    name = name or f"{secrets.token_hex(16)}.txt"
    return Challenge(kind="http", domain=domain, name=f".well-known/{directory}/{name}",
                     content=content or secrets.token_urlsafe(32))


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
