"""The embedded installer: local directories, one per web server, swapped atomically.

Each target gets ``<target.path>/<common name>/{cert,chain,fullchain,privkey}.pem``
(key 0600, the others 0644). Files are staged as temporary files in the same directory
(so ``os.replace`` is atomic), the previous versions are kept in memory until the whole
group succeeded, and the reload command runs locally without a shell.
"""
from __future__ import annotations

import logging
import os
import shlex
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Sequence

from adapters.base import Target
from adapters.common.files import sweep_stale_temps
from adapters.install.targets import (
    AllOrNothingInstaller,
    InstallFile,
    StepFailed,
    safe_directory_name,
)
from adapters.install.tls_probe import served_fingerprint

__all__ = ["LocalInstaller", "LocalTargetSession", "served_fingerprint"]

log = logging.getLogger(__name__)

TEMP_PREFIX = ".certflow-"
TEMP_SUFFIX = ".tmp"


class LocalInstaller(AllOrNothingInstaller):
    """adapters.base.Installer for directories on this machine.

    ``run_timeout``: seconds a reload command may run; ``verify_timeout``: seconds for one
    TLS handshake; ``verify_attempts``: handshakes tried before a mismatch counts.
    """

    def __init__(
        self, run_timeout: float = 60.0, verify_timeout: float = 10.0, verify_attempts: int = 5
    ) -> None:
        super().__init__(verify_timeout=verify_timeout, verify_attempts=verify_attempts)
        self.run_timeout = run_timeout

    def open_session(self, target: Target, directory: str) -> LocalTargetSession:
        return LocalTargetSession(target, directory, self.run_timeout)

    def sweep_leftovers(self, targets: Sequence[Target]) -> list[str]:
        """At start: the temporary files (certificate content) a killed install left in
        ``<target>/<common name>/``, for every target, not only the next one installed."""
        removed: list[str] = []
        for target in targets:
            try:
                sites = [e.path for e in os.scandir(target.path) if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue  # a target not made yet, or unreachable: its next install sweeps it
            for site in sites:
                removed += sweep_stale_temps(site, TEMP_PREFIX, TEMP_SUFFIX)
        return removed


@dataclass
class _Previous:
    """What a live file was before the swap (None content: it did not exist)."""

    content: bytes | None
    mode: int = 0
    uid: int = -1
    gid: int = -1

    def __repr__(self) -> str:  # content may be a private key
        return f"_Previous(exists={self.content is not None})"


class LocalTargetSession:
    """TargetSession for one local directory; see adapters.install.targets.TargetSession."""

    def __init__(self, target: Target, directory: str, run_timeout: float = 60.0) -> None:
        self.target = target
        self.root = os.path.abspath(target.path)
        self.directory = os.path.join(self.root, safe_directory_name(directory))
        self.run_timeout = run_timeout
        self._staged: dict[str, str] = {}          # file name -> temp path
        self._temps: set[str] = set()              # temp files not yet renamed
        self._previous: dict[str, _Previous] = {}  # file name -> live version before swap
        self._swapped: list[str] = []
        self._created: list[str] = []               # directories made by stage, outermost first

    # --- TargetSession ---------------------------------------------------------------

    def stage(self, files: Sequence[InstallFile]) -> None:
        self._prepare_directory()
        sweep_stale_temps(self.directory, TEMP_PREFIX, TEMP_SUFFIX)  # a killed run's leftovers
        for file in files:
            self._previous[file.name] = self._read_live(file.name)
            self._staged[file.name] = self._write_temp(file.content, file.mode, self._previous[file.name])

    def swap(self) -> None:
        for name, temp in list(self._staged.items()):
            self._swapped.append(name)  # first: rolling back an unreplaced file is harmless
            os.replace(temp, self._live(name))
            self._temps.discard(temp)
            del self._staged[name]
        _fsync_directory(self.directory)

    def rollback(self) -> None:
        for name in reversed(self._swapped):
            previous = self._previous[name]
            if previous.content is None:
                _unlink_if_present(self._live(name))
            else:
                temp = self._write_temp(previous.content, previous.mode, previous)
                os.replace(temp, self._live(name))
                self._temps.discard(temp)
        self._swapped.clear()
        _fsync_directory(self.directory)
        self._remove_directories_if_ours()

    def reload(self) -> None:
        if self.target.reload:
            _run(self.target.reload, self.run_timeout)

    def cleanup(self) -> None:
        for temp in self._temps:
            _unlink_if_present(temp)
        self._temps.clear()
        self._staged.clear()
        self._previous.clear()
        if not self._swapped:
            self._remove_directories_if_ours()

    # --- helpers ---------------------------------------------------------------------

    def _live(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _prepare_directory(self) -> None:
        """Create what is missing of ``<path>/<common name>/`` (remembered, so a failed
        install removes it again) and refuse anything that is not a plain directory."""
        missing = []
        path = self.directory
        while not os.path.lexists(path) and path != os.path.dirname(path):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o755)
            except NotADirectoryError:
                raise StepFailed(f"{os.path.dirname(path)} is not a directory") from None
            except FileExistsError:
                if not os.path.isdir(path):
                    raise StepFailed(f"{path} is not a directory") from None
                continue  # another worker's install made it meanwhile: it is not ours to remove
            self._created.append(path)
        if not os.path.isdir(self.root):
            raise StepFailed(f"{self.root} is not a directory")
        # A symlinked or replaced <common name> must not lead the files out of the root.
        if os.path.islink(self.directory) or not os.path.isdir(self.directory):
            raise StepFailed(f"{self.directory} is not a directory")
        if os.path.dirname(os.path.realpath(self.directory)) != os.path.realpath(self.root):
            raise StepFailed(f"{self.directory} leads outside {self.root}")

    def _read_live(self, name: str) -> _Previous:
        path = self._live(name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return _Previous(None)
        if not stat.S_ISREG(info.st_mode):
            raise StepFailed(f"{path} is not a regular file")
        with open(path, "rb") as live:
            content = live.read()
        return _Previous(content, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)

    def _write_temp(self, content: bytes, mode: int, previous: _Previous) -> str:
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=self.directory)
        self._temps.add(temp)
        with open(fd, "wb") as out:  # 0600 (mkstemp) until complete, then the file's mode
            if previous.content is not None and os.geteuid() == 0:
                os.fchown(out.fileno(), previous.uid, previous.gid)  # keep the operator's owner
            out.write(content)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        return temp

    def _remove_directories_if_ours(self) -> None:
        while self._created:
            try:
                os.rmdir(self._created[-1])  # deepest first
            except OSError:
                return  # not empty: something else lives there now; leave it
            self._created.pop()


def _run(command: str, timeout: float) -> None:
    """Run a reload command without a shell; StepFailed with its exit code and last
    stderr line when it does not succeed."""
    argv = shlex.split(command)
    if not argv:
        return
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise StepFailed(f"reload {argv[0]} did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise StepFailed(f"reload {argv[0]} could not run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1].strip() if lines else "no error output"
        raise StepFailed(f"reload {argv[0]} exited {done.returncode}: {last}")


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
