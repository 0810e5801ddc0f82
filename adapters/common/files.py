"""Atomic, durable file replacement shared by adapters that write files."""
from __future__ import annotations

import os
import tempfile


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644, suffix: str = ".tmp") -> None:
    """Replace ``path`` with ``data``: readers see the old or the new file, never a part;
    ``mode`` holds from the first byte (a key is never world-readable); the rename is
    made durable by syncing the directory. No temporary file is left behind."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
