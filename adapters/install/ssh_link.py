"""One SSH connection (with its SFTP session) to one server, used for every step of one
install, driven synchronously from the installer's worker threads.

asyncssh runs on one event loop in a background thread per installer; each call here
submits a coroutine and waits, bounded by ``command_timeout``. Every failure becomes
``StepFailed`` with a one-line, secret-free message (no key material, no passphrase).
"""
from __future__ import annotations

import asyncio
import logging
import shlex
import socket
import threading
from dataclasses import dataclass
from typing import Any, Awaitable, Sequence

import asyncssh

from adapters.common.servers import SshAddress
from adapters.install.ssh_trust import HostKeyRefused, PinnedClient, pinned_keys, refusal
from adapters.install.targets import StepFailed

# asyncssh logs each login and channel at INFO; the daemon's log does not need that
logging.getLogger("asyncssh").setLevel(logging.WARNING)


@dataclass(frozen=True)
class SshSettings:
    """``[install.ssh]`` values a connection needs."""

    known_hosts: str
    connect_timeout: float = 10.0
    auth_timeout: float = 20.0
    command_timeout: float = 60.0

    @classmethod
    def from_section(cls, section: dict) -> "SshSettings":
        return cls(section["known_hosts"], section["connect_timeout"], section["auth_timeout"],
                   section["command_timeout"])


class EventLoopThread:
    """An asyncio loop in a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coro: Awaitable[Any], timeout: float | None = None) -> Any:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="certflow-ssh",
                                 daemon=True).start()
        if timeout is not None:
            coro = asyncio.wait_for(coro, timeout)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


class SshLink:
    """A logged-in connection to ``address``; see :func:`open_link`."""

    def __init__(self, loop: EventLoopThread, address: SshAddress, conn, sftp,
                 settings: SshSettings) -> None:
        self.loop, self.address, self._conn, self._sftp = loop, address, conn, sftp
        self.settings = settings

    # --- SFTP ---------------------------------------------------------------------

    def _call(self, what: str, coro: Awaitable[Any]) -> Any:
        try:
            return self.loop.run(coro, self.settings.command_timeout)
        except asyncssh.SFTPError as exc:
            raise StepFailed(f"{what}: {exc.reason or _SFTP_CODES.get(exc.code, exc.code)}") from None
        except (asyncio.TimeoutError, TimeoutError):
            raise StepFailed(f"{what}: no answer within {self.settings.command_timeout:g}s") from None
        except (asyncssh.Error, OSError) as exc:
            raise StepFailed(f"{what}: connection lost ({reason(exc)})") from None

    def lstat(self, path: str) -> asyncssh.SFTPAttrs | None:
        async def go():
            try:
                return await self._sftp.lstat(path)
            except asyncssh.SFTPNoSuchFile:
                return None
        return self._call(f"stat {path}", go())

    def is_dir(self, attrs: asyncssh.SFTPAttrs | None) -> bool:
        return attrs is not None and attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY

    def is_file(self, attrs: asyncssh.SFTPAttrs | None) -> bool:
        return attrs is not None and attrs.type == asyncssh.FILEXFER_TYPE_REGULAR

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        self._call(f"mkdir {path}", self._sftp.mkdir(path, asyncssh.SFTPAttrs(permissions=mode)))

    def rmdir(self, path: str) -> None:
        self._call(f"rmdir {path}", self._sftp.rmdir(path))

    def listdir(self, path: str) -> list[str]:
        return [n for n in self._call(f"list {path}", self._sftp.listdir(path)) if n not in (".", "..")]

    def write_new(self, path: str, data: bytes, mode: int) -> None:
        """Create ``path`` (it must not exist) with ``mode`` given in the open request
        itself, so a key is never readable by others, whatever the server's umask; then
        widen to ``mode`` what the umask narrowed, and flush to disk."""
        async def go():
            flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_EXCL
            async with await self._sftp.open(path, flags, asyncssh.SFTPAttrs(permissions=mode),
                                             encoding=None) as out:
                await out.write(data)
                await out.chmod(mode)
                try:
                    await out.fsync()
                except asyncssh.SFTPOpUnsupported:
                    pass  # the server cannot sync: the rename still makes the swap atomic
        self._call(f"write {path}", go())

    def read(self, path: str) -> bytes:
        async def go():
            async with await self._sftp.open(path, "rb") as source:
                return await source.read()
        return self._call(f"read {path}", go())

    def rename(self, source: str, target: str) -> None:
        """Atomic replace (posix-rename@openssh.com)."""
        self._call(f"rename {source}", self._sftp.posix_rename(source, target))

    def link(self, source: str, target: str) -> None:
        """Hard link (hardlink@openssh.com): a backup that costs no copy."""
        self._call(f"link {source}", self._sftp.link(source, target))

    def remove(self, path: str) -> None:
        async def go():
            try:
                await self._sftp.remove(path)
            except asyncssh.SFTPNoSuchFile:
                pass
        self._call(f"remove {path}", go())

    # --- commands -----------------------------------------------------------------

    def run(self, argv: Sequence[str], what: str) -> tuple[int, str]:
        """Run ``argv`` on the server: every word quoted, so the login shell sees exactly
        these words and expands nothing. (exit status, last line of stderr)."""
        command = shlex.join(argv)

        async def go():
            done = await self._conn.run(command, check=False, stdin=asyncssh.DEVNULL,
                                        encoding="utf-8", errors="replace")
            lines = (done.stderr or "").strip().splitlines()
            status = done.exit_status if done.exit_status is not None else 255
            return status, lines[-1].strip() if lines else ""
        return self._call(what, go())

    def close(self) -> None:
        async def go():
            self._sftp.exit()
            self._conn.close()
            await self._conn.wait_closed()
        try:
            self.loop.run(go(), 5.0)
        except Exception:  # noqa: BLE001 - closing must not hide the outcome
            pass


def open_link(loop: EventLoopThread, address: SshAddress, identity: asyncssh.SSHKey,
              settings: SshSettings) -> SshLink:
    """Connect (``connect_timeout``), check the host key against the pinned ones, log in
    with ``identity`` only (``auth_timeout``) and start SFTP.

    Raise StepFailed (unreachable, login refused, timeout) or HostKeyRefused.
    """
    where = address.host_port
    try:
        pinned = pinned_keys(settings.known_hosts, address.host, address.port)
    except ValueError as exc:
        raise StepFailed(str(exc)) from None
    try:
        sock = socket.create_connection((address.host, address.port), settings.connect_timeout)
    except OSError as exc:
        raise StepFailed(f"cannot connect to {where}: {reason(exc)}") from None
    sock.setblocking(False)
    client = PinnedClient()

    async def go():
        conn = await asyncssh.connect(
            sock=sock, host=address.host, port=address.port, username=address.user,
            client_factory=lambda: client, known_hosts=(pinned, [], []),
            client_keys=[identity], agent_path=None, config=[], preferred_auth="publickey",
            password=None, kbdint_auth=False, gss_auth=False, x509_trusted_certs=None,
            connect_timeout=settings.auth_timeout)
        try:
            sftp = await conn.start_sftp_client()
        except BaseException:
            conn.close()
            raise
        return conn, sftp
    try:
        conn, sftp = loop.run(go(), settings.auth_timeout + 5)
    except asyncssh.HostKeyNotVerifiable:
        raise refusal(address.host, address.port, client.presented, pinned) from None
    except asyncssh.PermissionDenied:
        raise StepFailed(f"login as {address.user} on {where} refused: the identity's public "
                         "key is not in the server's authorized_keys") from None
    except (asyncio.TimeoutError, TimeoutError):
        sock.close()
        raise StepFailed(f"no SSH login on {where} within {settings.auth_timeout:g}s") from None
    except (asyncssh.Error, OSError) as exc:
        sock.close()
        raise StepFailed(f"SSH to {where} failed: {reason(exc)}") from None
    return SshLink(loop, address, conn, sftp, settings)


_SFTP_CODES = {asyncssh.FX_PERMISSION_DENIED: "permission denied",
               asyncssh.FX_NO_SUCH_FILE: "no such file"}


def reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


__all__ = ["EventLoopThread", "HostKeyRefused", "SshLink", "SshSettings", "open_link"]
