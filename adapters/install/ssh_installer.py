"""The installer for contracts whose servers are SSH hosts, local directories, or both.

One install: take every SSH server's lock, open one connection per server (in parallel,
``parallel`` at a time) and reuse it for all steps, then the all-or-nothing steps of
adapters.install.targets (stage everywhere, swap everywhere, reload, verify, roll back
everything on any failure). Local directories go through the local installer's session.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import asyncssh

from adapters.base import BadInput, Bundle, Target, TransientError
from adapters.common.hostport import format_host_port, parse_host_port
from adapters.install.local import LocalInstaller, LocalTargetSession
from adapters.install.server_lock import server_locks
from adapters.common.servers import DEFAULT_SSH_PORT, is_ssh_url, parse_ssh_url
from adapters.install.ssh_keys import load_identity, public_key_line
from adapters.install.ssh_link import EventLoopThread, SshLink, SshSettings, open_link, reason as _reason
from adapters.install.ssh_session import SshTargetSession
from adapters.install.ssh_trust import (HostKeyRefused, fingerprint, forget, pinned_keys, record,
                                        server_host_key)
from adapters.install.targets import AllOrNothingInstaller, StepFailed, TargetSession

log = logging.getLogger(__name__)


class ServerGroupInstaller(AllOrNothingInstaller):
    """adapters.base.Installer over ``ssh://USER@HOST[:PORT]/DIR`` and local targets.

    ``ssh``: the checked ``[install.ssh]`` section; ``run_timeout``: seconds a local
    reload may run.
    """

    def __init__(self, ssh: dict, run_timeout: float = 60.0, verify_timeout: float = 10.0,
                 verify_attempts: int = 5) -> None:
        super().__init__(verify_timeout=verify_timeout, verify_attempts=verify_attempts,
                         parallel=ssh["parallel"])
        self.ssh = ssh
        self.settings = SshSettings.from_section(ssh)
        self.local = LocalInstaller(run_timeout=run_timeout)
        self.loop = EventLoopThread()
        self._tls = threading.local()  # this thread's install's links (effects may run in threads)

    def install(self, bundle: Bundle, targets: Sequence[Target]) -> None:
        remote = [t for t in targets if is_ssh_url(t.path)]
        if not remote:  # nothing remote: exactly the local installer
            return self.local.install(bundle, targets)
        servers = [parse_ssh_url(t.path).server for t in remote]
        with server_locks(self.ssh["lock_dir"], servers, self.ssh["lock_timeout"]):
            self._tls.links = self._connect(remote)
            try:
                super().install(bundle, targets)
            finally:
                links, self._tls.links = self._tls.links, {}
                for link in links.values():
                    link.close()

    def open_session(self, target: Target, directory: str) -> TargetSession:
        if not is_ssh_url(target.path):
            return LocalTargetSession(target, directory, self.local.run_timeout)
        return SshTargetSession(target, parse_ssh_url(target.path), self._tls.links[target.path],
                                directory)

    def sweep_leftovers(self, targets: Sequence[Target]) -> list[str]:
        """Local targets only: SSH servers are repaired by their next install, which
        restores an interrupted swap before staging (no connections at start-up)."""
        return self.local.sweep_leftovers([t for t in targets if not is_ssh_url(t.path)])

    def check_servers(self, targets: Sequence[Target]) -> list:
        """``certflow doctor``: each SSH server's :class:`adapters.install.ssh_doctor.ServerCheck`."""
        from adapters.install.ssh_doctor import check_servers
        return check_servers(self.ssh, targets)

    # --- identity and host keys (certflow ssh pubkey | trust) -----------------------------

    def public_key(self) -> str:
        return public_key_line(self.ssh["identity"], self.ssh["passphrase_env"])

    def trust_host(self, host_port: str, expect: str | None = None, replace: bool = False
                   ) -> tuple[str, bool]:
        """Fetch the host key of ``host_port`` and pin it: (its SHA256 fingerprint, whether
        it was newly recorded). BadInput when it is not ``expect``, or when another key is
        pinned for the host and ``replace`` is not given."""
        host, port = parse_host_port(host_port, "host", default_port=DEFAULT_SSH_PORT)
        where = format_host_port(host, port)
        try:
            key = self.loop.run(server_host_key(host, port), self.settings.auth_timeout)
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            raise TransientError(f"cannot fetch the host key of {where}: {_reason(exc)}",
                                 host=where) from None
        if key is None:
            raise TransientError(f"{where} offered no host key", host=where)
        shown = fingerprint(key)
        if expect and expect.strip() not in (shown, shown.removeprefix("SHA256:")):
            raise BadInput("fingerprint", f"host key of {where} is {shown}, not the expected "
                           f"{expect.strip()}: nothing recorded", value=shown)
        path = self.ssh["known_hosts"]
        others = [fingerprint(k) for k in pinned_keys(path, host, port)
                  if fingerprint(k) != shown]
        if others and not replace:
            raise BadInput("host", f"{where} has another pinned host key ({', '.join(others)}); "
                           f"presented {shown}; nothing recorded (use --replace if the server "
                           "was re-keyed)", value=shown)
        if others:
            forget(path, host, port)
        return shown, record(path, host, port, key)

    # --- connections ------------------------------------------------------------------

    def _connect(self, targets: Sequence[Target]) -> dict[str, SshLink]:
        """One logged-in link per target, opened ``parallel`` at a time; on any failure
        close those opened and raise TransientError naming the server and the step."""
        identity = load_identity(self.ssh["identity"], self.ssh["passphrase_env"])
        unique = list(dict.fromkeys(t.path for t in targets))
        by_path = {t.path: t for t in targets}
        with ThreadPoolExecutor(min(self.parallel, len(unique)), "certflow-ssh") as pool:
            futures = {path: pool.submit(open_link, self.loop, parse_ssh_url(path), identity,
                                         self.settings) for path in unique}
        links, failure = {}, None
        for path, future in futures.items():
            exc = future.exception()
            if exc is None:
                links[path] = future.result()
            elif failure is None:
                failure = (by_path[path], exc)
        if failure is not None:
            for link in links.values():
                link.close()
            target, exc = failure
            raise _connect_error(target, exc) from exc
        return links


def _connect_error(target: Target, exc: BaseException) -> BaseException:
    if isinstance(exc, HostKeyRefused):
        return TransientError(f"install on server {target.name} ({target.path}) failed at "
                              f"connect: {exc}", target=target.name, path=target.path,
                              step="connect", host=exc.host, found=exc.presented,
                              expected=", ".join(exc.pinned) or None, detail=str(exc))
    if isinstance(exc, StepFailed):
        return TransientError(f"install on server {target.name} ({target.path}) failed at "
                              f"connect: {exc}", target=target.name, path=target.path,
                              step="connect", detail=str(exc))
    return exc
