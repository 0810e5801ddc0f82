"""Per-server locks: two installs (threads, or daemons on this host) never work on one
server at once.

A lock is ``fcntl.flock`` on ``<lock_dir>/<server>.lock``: the kernel drops it when its
holder dies, even by kill -9, so a crashed daemon never leaves a server locked. Locks of
one install are taken in sorted order, so two installs sharing servers cannot deadlock.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import threading
import time
from typing import Iterable, Iterator

from adapters.base import TransientError

#: pause between attempts while another install holds the lock
_POLL = 0.05
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: flock is per open file; threads of one process each open their own, so they exclude
#: each other too (the in-process lock only keeps the file count down)
_local = threading.Lock()


def lock_path(lock_dir: str, server: str) -> str:
    """A file name per server, readable (``127.0.0.1_2222``) and collision-free (hash)."""
    digest = hashlib.sha256(server.encode()).hexdigest()[:12]
    return os.path.join(lock_dir, f"{_SAFE.sub('_', server)[:80]}-{digest}.lock")


@contextlib.contextmanager
def server_locks(lock_dir: str, servers: Iterable[str], timeout: float) -> Iterator[None]:
    """Hold every server's lock for the block; TransientError naming the busy server
    when one is not free within ``timeout`` seconds (the install is retried later)."""
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    held: list[int] = []
    try:
        for server in sorted(set(servers)):
            held.append(_acquire(lock_path(lock_dir, server), server, timeout))
        yield
    finally:
        for fd in reversed(held):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _acquire(path: str, server: str, timeout: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise TransientError(
                    f"server {server} is busy with another install (waited {timeout:g}s)",
                    host=server, step="lock") from None
            time.sleep(_POLL)
