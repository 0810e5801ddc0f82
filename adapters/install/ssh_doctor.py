"""``certflow doctor`` for SSH servers: connect, host key, login, DIR writable, and the
reload command's program present, for each server; changes nothing on them."""
from __future__ import annotations

import secrets
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from adapters.base import BadInput, Target
from adapters.common.servers import is_ssh_url, parse_ssh_url
from adapters.install.ssh_keys import load_identity
from adapters.install.ssh_link import EventLoopThread, SshSettings, open_link
from adapters.install.ssh_trust import HostKeyRefused
from adapters.install.targets import StepFailed

#: ``command -v`` through sh with the program as "$1": the program name is an argument,
#: never parsed as shell text
_FIND_PROGRAM = ("sh", "-c", 'command -v -- "$1" >/dev/null', "sh")


@dataclass(frozen=True)
class ServerCheck:
    """One server's result: ``step`` is what failed (None: all passed)."""

    target: Target
    step: str | None
    detail: str


def check_servers(ssh: dict, targets: Sequence[Target]) -> list[ServerCheck]:
    """Every ``ssh://`` target checked, ``[install.ssh] parallel`` at a time, in order."""
    remote = list({(t.path, t.reload): t for t in targets if is_ssh_url(t.path)}.values())
    if not remote:
        return []
    try:
        identity = load_identity(ssh["identity"], ssh["passphrase_env"])
    except BadInput as exc:
        return [ServerCheck(t, "identity", exc.message) for t in remote]
    loop, settings = EventLoopThread(), SshSettings.from_section(ssh)
    with ThreadPoolExecutor(min(ssh["parallel"], len(remote)), "certflow-doctor") as pool:
        return list(pool.map(lambda t: _check(loop, settings, identity, t), remote))


def _check(loop: EventLoopThread, settings: SshSettings, identity, target: Target) -> ServerCheck:
    address = parse_ssh_url(target.path)
    try:
        link = open_link(loop, address, identity, settings)
    except HostKeyRefused as exc:
        return ServerCheck(target, "host key", str(exc))
    except StepFailed as exc:
        return ServerCheck(target, "connect", str(exc))
    try:
        root = link.lstat(address.directory)
        if not link.is_dir(root):
            return ServerCheck(target, "directory", f"{address.directory} is not a directory"
                               if root else f"{address.directory} does not exist")
        probe = f"{address.directory}/.certflow-doctor-{secrets.token_hex(8)}"
        try:
            link.write_new(probe, b"", 0o600)
        except StepFailed as exc:
            return ServerCheck(target, "directory", f"{address.directory} not writable: {exc}")
        link.remove(probe)
        if target.reload:
            program = shlex.split(target.reload)[0]
            status, _ = link.run((*_FIND_PROGRAM, program), f"look for {program}")
            if status != 0:
                return ServerCheck(target, "reload", f"reload program {program!r} not found")
        return ServerCheck(target, None, f"{address.user}@{address.host_port} ok")
    except StepFailed as exc:
        return ServerCheck(target, "check", str(exc))
    finally:
        link.close()
