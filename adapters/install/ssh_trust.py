"""Pinned SSH host keys: our own known_hosts file (OpenSSH format), no trust on first use.

An unknown or changed host key is refused with a message naming the host and both
fingerprints (pinned and presented), so the operator can compare them out of band.
"""
from __future__ import annotations

import os
from pathlib import Path

import asyncssh

from adapters.common.files import write_atomic
from adapters.common.hostport import format_host_port

DEFAULT_PORT = 22


class HostKeyRefused(Exception):
    """The server presented a host key that is not pinned for it (one line, no secrets)."""

    def __init__(self, message: str, host: str, presented: str, pinned: list[str]) -> None:
        super().__init__(message)
        self.host, self.presented, self.pinned = host, presented, pinned


def known_host_name(host: str, port: int) -> str:
    """How OpenSSH writes the host in known_hosts: ``host`` on 22, ``[host]:port`` otherwise."""
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    return key.get_fingerprint("sha256")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def pinned_keys(path: str, host: str, port: int) -> list[asyncssh.SSHKey]:
    """The host keys pinned for ``host:port`` (exact entries; hashed entries work too)."""
    text = _read(path)
    if not text.strip():
        return []
    try:
        known = asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError) as exc:
        raise ValueError(f"known_hosts {path} is not in known_hosts format: {exc}") from None
    found = known.match(host, host, None if port == DEFAULT_PORT else port)[0]
    return list({fingerprint(k): k for k in found}.values())


def refusal(host: str, port: int, presented: asyncssh.SSHKey | None,
            pinned: list[asyncssh.SSHKey]) -> HostKeyRefused:
    where = format_host_port(host, port)
    shown = fingerprint(presented) if presented is not None else "none"
    prints = [fingerprint(k) for k in pinned]
    if prints:
        message = (f"host key of {where} changed: pinned {', '.join(prints)}, presented {shown}; "
                   f"if the server was really re-keyed, remove the old line and run "
                   f"`certflow ssh trust {where}`")
    else:
        message = (f"host key of {where} is not pinned (presented {shown}); check it with the "
                   f"server's admin, then run `certflow ssh trust {where}`")
    return HostKeyRefused(message, where, shown, prints)


def record(path: str, host: str, port: int, key: asyncssh.SSHKey) -> bool:
    """Append ``key`` for ``host:port`` unless pinned already; False when it was."""
    if fingerprint(key) in {fingerprint(k) for k in pinned_keys(path, host, port)}:
        return False
    line = f"{known_host_name(host, port)} {key.export_public_key('openssh').decode().split()[0]} " \
           f"{key.export_public_key('openssh').decode().split()[1]}\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = _read(path)
    if text and not text.endswith("\n"):
        text += "\n"
    write_atomic(path, (text + line).encode(), mode=0o644)
    return True


class PinnedClient(asyncssh.SSHClient):
    """asyncssh trusts the pinned keys itself and asks us only about others: we note
    the presented key (for the message) and say no."""

    def __init__(self) -> None:
        self.presented: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host, addr, port, key) -> bool:  # noqa: ANN001
        self.presented = key
        return False


def forget(path: str, host: str, port: int) -> int:
    """Remove the plain entries for exactly ``host:port``; how many lines went."""
    name = known_host_name(host, port)
    kept, dropped = [], 0
    for line in _read(path).splitlines(keepends=True):
        fields = line.split()
        if fields and not line.lstrip().startswith("#") and name in fields[0].split(","):
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        write_atomic(path, "".join(kept).encode(), mode=0o644)
    return dropped


async def server_host_key(host: str, port: int) -> asyncssh.SSHKey | None:
    """The key the server proves it holds in a key exchange (no login, nothing trusted)."""
    return await asyncssh.get_server_host_key(host, port, config=[])
