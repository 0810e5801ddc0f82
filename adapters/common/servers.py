"""A contract's install servers: ``ssh://USER@HOST[:PORT]/DIR`` or local directories.

The one place that reads a contract's ``servers``/``verify`` entries into install
targets (config checks entries with the same functions, so what loads also installs).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from urllib.parse import unquote

from adapters.base import BadInput, Target
from adapters.common.hostport import format_host_port, parse_host_port

SSH_SCHEME = "ssh://"
HOST_PLACEHOLDER = "{host}"
DEFAULT_SSH_PORT = 22
#: a POSIX login name (what sshd accepts as a user), no shell or URL syntax in it
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
#: remote directories: absolute, printable, no NUL/newline and no '..' component
_BAD_PATH_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SshAddress:
    """Where one SSH server keeps its certificates: ``user@host:port`` and ``directory``."""

    user: str
    host: str
    port: int
    directory: str

    @property
    def host_port(self) -> str:
        return format_host_port(self.host, self.port)

    @property
    def server(self) -> str:
        """The machine (what a lock and a pinned host key are for)."""
        return self.host_port

    @property
    def name(self) -> str:
        """A short name for messages: the host, with the port when it is not 22."""
        return self.host if self.port == DEFAULT_SSH_PORT else self.host_port

    def url(self) -> str:
        return f"{SSH_SCHEME}{self.user}@{self.host_port}{self.directory}"


def is_ssh_url(entry: Any) -> bool:
    return isinstance(entry, str) and entry.startswith(SSH_SCHEME)


def parse_ssh_url(url: str, field: str = "servers") -> SshAddress:
    """``ssh://USER@HOST[:PORT]/DIR`` → SshAddress; BadInput naming ``field`` otherwise.

    DIR is absolute on the server (``ssh://deploy@web1/etc/nginx/ssl`` is
    ``/etc/nginx/ssl``); it may not contain ``..`` or control characters.
    """
    if not is_ssh_url(url):
        raise BadInput(field, f"{field} {url!r:.120} is not ssh://USER@HOST[:PORT]/DIR", value=url)
    rest = url[len(SSH_SCHEME):]
    authority, slash, path = rest.partition("/")
    user, at, host_port = authority.rpartition("@")
    if not at or not slash:
        raise BadInput(field, f"{field} {url!r:.120} is not ssh://USER@HOST[:PORT]/DIR "
                       "(the user and the directory are required)", value=url)
    if not _USER.fullmatch(user):
        raise BadInput(field, f"{field} {url!r:.120}: user {user!r:.40} is not a login name", value=url)
    host, port = parse_host_port(host_port, field, default_port=DEFAULT_SSH_PORT)
    directory = "/" + unquote(path).strip("/")
    parts = directory.split("/")
    if _BAD_PATH_CHARS.search(directory) or ".." in parts or "." in parts or directory == "/":
        raise BadInput(field, f"{field} {url!r:.120}: directory must be an absolute path "
                       "below / without '..' or control characters", value=url)
    return SshAddress(user, host, port, directory)


def check_server_entry(entry: str, field: str) -> None:
    """Config: refuse a malformed ssh:// entry at load (local paths are checked at install)."""
    if is_ssh_url(entry):
        parse_ssh_url(entry, field)


def check_servers(servers: Sequence[Any], verify: Any, where: str) -> list[str | None]:
    """Config: check a contract's ``servers`` (ssh:// entries) and ``verify`` (one for all,
    a ``{host}`` template, or one per server); each entry's verify (a table's own, or the
    contract's). BadInput naming the entry otherwise."""
    paths = [entry.get("path") if isinstance(entry, dict) else entry for entry in servers]
    for i, path in enumerate(paths):
        check_server_entry(path, f"{where}.servers[{i}]")
    shared = verify_entries(verify, paths, f"{where}.verify")
    return [(verify_for(entry["verify"], entry["path"], f"{where}.servers[{i}].verify")
             if entry.get("verify") is not None and isinstance(entry.get("path"), str) else None)
            if isinstance(entry, dict) else shared[i] for i, entry in enumerate(servers)]


def verify_entries(verify: Any, servers: Sequence[str], field: str) -> list[str | None]:
    """A contract's ``verify``, per server: None, one ``host:port`` for all, a template
    with ``{host}`` (the SSH server's host), or a list of one per server.

    Raise BadInput naming ``field`` when the list's length is not the servers' count,
    an entry is not host:port, or ``{host}`` is used for a local directory.
    """
    if verify is None:
        return [None] * len(servers)
    if isinstance(verify, list):
        if len(verify) != len(servers):
            raise BadInput(field, f"{field} has {len(verify)} entries for {len(servers)} "
                           "servers: give one host:port per server, or one for all", value=verify)
        entries = verify
    elif isinstance(verify, str):
        entries = [verify] * len(servers)
    else:
        raise BadInput(field, f"{field} must be host:port or a list of them", value=verify)
    out: list[str | None] = []
    for i, (entry, server) in enumerate(zip(entries, servers)):
        at = f"{field}[{i}]" if isinstance(verify, list) else field
        out.append(verify_for(entry, server, at))
    return out


def verify_for(entry: Any, server: str, field: str) -> str:
    """One verify entry for one server: ``{host}`` replaced, then checked as host:port."""
    if not isinstance(entry, str):
        raise BadInput(field, f"{field} must be a string host:port", value=entry)
    if HOST_PLACEHOLDER in entry:
        if not is_ssh_url(server):
            raise BadInput(field, f"{field} {entry!r}: {HOST_PLACEHOLDER} needs an ssh:// server, "
                           f"not {server!r:.80}", value=entry)
        entry = entry.replace(HOST_PLACEHOLDER, format_host_port_host(parse_ssh_url(server, field)))
    parse_host_port(entry, field)
    return entry


def format_host_port_host(address: SshAddress) -> str:
    """The host as it goes before ``:port`` (IPv6 in brackets)."""
    return f"[{address.host}]" if ":" in address.host else address.host


def install_targets(entries: Iterable[dict]) -> list[Target]:
    """A contract's checked ``targets`` (path, reload, verify, name) → install Targets.

    A target without a name is called after its SSH host (with the port unless 22) or its
    directory's last component.
    """
    targets = []
    for entry in entries:
        path = entry["path"]
        if entry.get("name"):
            name = entry["name"]
        elif is_ssh_url(path):
            name = parse_ssh_url(path).name
        else:
            name = path.rstrip("/").rsplit("/", 1)[-1]
        targets.append(Target(name=name, path=path, reload=entry.get("reload"),
                              verify=entry.get("verify")))
    return targets


__all__ = ["SshAddress", "check_servers", "install_targets", "is_ssh_url", "parse_ssh_url",
           "verify_entries", "check_server_entry", "format_host_port"]
