"""Files shared by adapters and the engine: atomic replacement, capped reads, and the
sweep of temporary files a killed process left behind."""
from __future__ import annotations

import os
import tempfile
import time

from adapters.base import BadInput

#: our temporary files younger than this may belong to a live writer; older ones are
#: leftovers of a killed process (a write takes milliseconds, an install seconds)
STALE_TEMP_SECONDS = 60.0


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644, suffix: str = ".tmp",
                 prefix: str = ".tmp-") -> None:
    """Replace ``path`` with ``data``: readers see the old or the new file, never a part.
    The temporary file is 0600 from its first byte (whatever the umask) and gets ``mode``
    only once complete; the rename is made durable by syncing the directory. No
    temporary file is left behind (but by a kill -9: see :func:`sweep_stale_temps`)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)  # 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
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


def sweep_stale_temps(directory: str | os.PathLike, prefix: str, suffix: str = "",
                      older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Remove ``prefix*suffix`` regular files in ``directory`` (not below it) last changed
    more than ``older_than`` seconds ago; return their paths. Only our own names are
    touched, and a missing directory is nothing to sweep."""
    cutoff = time.time() - older_than
    removed = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and \
                    entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(entry.path)
        except FileNotFoundError:
            pass  # another sweeper was first
    return removed


def _size_text(size: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def read_capped(path: str | os.PathLike, cap: int, field: str) -> bytes:
    """The bytes of ``path``, reading at most ``cap`` + 1 of them: a larger input (or an
    endless one, such as /dev/zero) is refused with BadInput naming ``field``, the file
    and the cap, before it can fill memory."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except OSError as exc:
        raise BadInput(field, f"cannot read {field} file {os.fspath(path)}: "
                              f"{exc.strerror or exc}") from None
    if len(data) > cap:
        raise BadInput(field, f"{field} file {os.fspath(path)} is larger than {_size_text(cap)} "
                              f"(the limit for a {field} file)")
    return data


def read_lines_capped(path: str | os.PathLike, line_cap: int, total_cap: int, field: str):
    """Yield ``(number, line)`` of a text file (UTF-8, without the line end), reading no
    line past ``line_cap`` bytes and no file past ``total_cap``: BadInput naming
    ``field``, the file, the line and the cap otherwise (an endless input included)."""
    name = os.fspath(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise BadInput(field, f"cannot read {field} file {name}: {exc.strerror or exc}") from None
    total = 0
    with handle:
        for number in range(1, 1 << 62):
            try:
                raw = handle.readline(line_cap + 1)
            except OSError as exc:
                raise BadInput(field, f"cannot read {field} file {name}: "
                                      f"{exc.strerror or exc}") from None
            if not raw:
                return
            total += len(raw)
            if len(raw) > line_cap and not raw.endswith(b"\n"):
                raise BadInput(field, f"{name}:{number}: line longer than {_size_text(line_cap)} "
                                      f"(the limit for a line of a {field} file)")
            if total > total_cap:
                raise BadInput(field, f"{field} file {name} is larger than {_size_text(total_cap)} "
                                      f"(the limit for a {field} file)")
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise BadInput(field, f"{name}:{number}: not UTF-8 (byte {exc.start + 1})") from None
