"""TargetSession for one SSH server: ``DIR/<common name>/`` over SFTP, with a journal so
a process killed mid-swap leaves nothing mixed once the next attempt starts.

Files in ``DIR/<cn>/`` besides the four live ones, all dot files of ours:

``.certflow-new.<name>``  staged file (created exclusive, final mode given at open)
``.certflow-old.<name>``  a hard link to the live file before the swap (the backup)
``.certflow-swap``        the journal: written after every backup exists, before the first
                          rename; lists the files that did not exist before

Swap: backups, journal, then one atomic rename per file. Success: journal removed (the
commit point on that server), then the backups. Rollback: backups renamed back, files
that did not exist removed, journal last. A later attempt that finds a journal (a kill
-9, a connection lost in rollback) first restores the backups, so every server is back
on one complete set before anything new is staged.
"""
from __future__ import annotations

import json
import logging
import posixpath
import shlex
from typing import Sequence

from adapters.base import Target
from adapters.common.servers import SshAddress
from adapters.install.ssh_link import SshLink
from adapters.install.targets import InstallFile, StepFailed, safe_directory_name

log = logging.getLogger(__name__)

NEW = ".certflow-new."
OLD = ".certflow-old."
JOURNAL = ".certflow-swap"
JOURNAL_TEMP = ".certflow-swap.tmp"
LIVE_NAMES = ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")


class SshTargetSession:
    """See adapters.install.targets.TargetSession."""

    def __init__(self, target: Target, address: SshAddress, link: SshLink, directory: str) -> None:
        self.target, self.address, self.link = target, address, link
        self.directory = posixpath.join(address.directory, safe_directory_name(directory))
        self._names: list[str] = []
        self._existed: set[str] = set()
        self._swapped: list[str] = []
        self._journal = False           # written on the server
        self._created = False           # DIR/<cn> made by this session
        self._rollback_done = False

    def _at(self, name: str) -> str:
        return posixpath.join(self.directory, name)

    # --- TargetSession ---------------------------------------------------------------

    def stage(self, files: Sequence[InstallFile]) -> None:
        self._prepare_directory()
        recover(self.link, self.directory)
        for file in files:
            live = self.link.lstat(self._at(file.name))
            if live is not None and not self.link.is_file(live):
                raise StepFailed(f"{self._at(file.name)} is not a regular file")
            if live is not None:
                self._existed.add(file.name)
            self._names.append(file.name)
            self.link.write_new(self._at(NEW + file.name), file.content, file.mode)

    def swap(self) -> None:
        for name in self._names:
            if name in self._existed:
                self.link.link(self._at(name), self._at(OLD + name))
        absent = [n for n in self._names if n not in self._existed]
        self.link.write_new(self._at(JOURNAL_TEMP), json.dumps({"absent": absent}).encode(), 0o600)
        self.link.rename(self._at(JOURNAL_TEMP), self._at(JOURNAL))
        self._journal = True
        for name in self._names:
            self._swapped.append(name)  # first: rolling back an unreplaced file is harmless
            self.link.rename(self._at(NEW + name), self._at(name))

    def rollback(self) -> None:
        for name in reversed(self._swapped):
            if name in self._existed:
                self.link.rename(self._at(OLD + name), self._at(name))
            else:
                self.link.remove(self._at(name))
        self._swapped.clear()
        if self._journal:
            self.link.remove(self._at(JOURNAL))
            self._journal = False
        self._rollback_done = True

    def reload(self) -> None:
        if not self.target.reload:
            return
        argv = shlex.split(self.target.reload)
        status, last = self.link.run(argv, f"reload {argv[0]}")
        if status != 0:
            raise StepFailed(f"reload {argv[0]} exited {status}: {last or 'no error output'}")

    def cleanup(self) -> None:
        """Success (swapped, never rolled back): the journal goes, then the backups.
        A failed rollback leaves journal and backups for the next attempt to restore."""
        if self._journal and self._swapped and not self._rollback_done:
            self.link.remove(self._at(JOURNAL))
        elif self._journal:
            log.warning("server %s keeps %s: its rollback did not finish; the next install "
                        "restores the previous files first", self.target.name, self._at(JOURNAL))
            return
        for name in self._names:
            self.link.remove(self._at(NEW + name))
            self.link.remove(self._at(OLD + name))
        if self._created and not self._swapped:
            try:
                self.link.rmdir(self.directory)
            except StepFailed:
                pass  # not empty: something else lives there now; leave it

    # --- helpers ---------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        root = self.link.lstat(self.address.directory)
        if root is None:
            raise StepFailed(f"{self.address.directory} does not exist")
        if not self.link.is_dir(root):
            raise StepFailed(f"{self.address.directory} is not a directory")
        site = self.link.lstat(self.directory)
        if site is None:
            self.link.mkdir(self.directory, 0o755)
            self._created = True
        elif not self.link.is_dir(site):  # a symlink must not lead the files elsewhere
            raise StepFailed(f"{self.directory} is not a directory")


def recover(link: SshLink, directory: str) -> list[str]:
    """Finish what a killed or disconnected install left in ``directory``: with a journal,
    put the backups back (and remove files that did not exist before); then remove our
    leftovers. The names restored."""
    at = lambda name: posixpath.join(directory, name)  # noqa: E731
    restored: list[str] = []
    journal = link.lstat(at(JOURNAL))
    if journal is not None:
        try:
            absent = json.loads(link.read(at(JOURNAL)).decode()).get("absent", [])
        except ValueError:
            absent = []
        for name in LIVE_NAMES:
            if link.lstat(at(OLD + name)) is not None:
                link.rename(at(OLD + name), at(name))
                restored.append(name)
            elif name in absent:
                link.remove(at(name))
                restored.append(name)
        link.remove(at(JOURNAL))
        log.warning("server %s: an interrupted install left %s; restored the previous %s",
                    link.address.name, directory, ", ".join(restored) or "files")
    for name in link.listdir(directory):
        if name.startswith((NEW, OLD)) or name == JOURNAL_TEMP:
            link.remove(at(name))
    return restored
