"""Notifier that writes each message as an RFC 5322 ``.eml`` file into a folder.

The embedded default: nothing to run, an operator (or a test) reads the folder.
The file name comes from the idempotency key alone, and files are replaced
atomically, so a retry after a crash rewrites the same file rather than adding one.
"""
from __future__ import annotations

import email.policy
import tempfile
from pathlib import Path

from adapters.abilities import Health
from adapters.common.files import sweep_stale_temps, write_atomic
from adapters.base import Notice, PermanentError, TransientError
from adapters.notify.messages import MessageBuilder, builder_from, message_hash
from adapters.settings import AdapterKind, Setting


#: write_atomic's temporary files in the folder (swept when stale)
TEMP_PREFIX = ".tmp-"


class FolderNotifier:
    """Writes ``<folder>/<sha256(idempotency_key)[:32]>.eml`` (mode 0600)."""

    def __init__(self, folder: str, builder: MessageBuilder) -> None:
        self.folder = Path(folder)
        self.builder = builder
        self._swept = False

    def __repr__(self) -> str:
        return f"FolderNotifier(path={str(self.folder)!r})"

    def path_for(self, notice: Notice) -> Path:
        """Where the notice's message is (or will be) written."""
        return self.folder / f"{message_hash(notice.idempotency_key)}.eml"

    def send(self, notice: Notice) -> None:
        """Render and write the message; the same key overwrites the same file."""
        data = self.builder.build(notice).as_bytes(policy=email.policy.SMTP)
        target = self.path_for(notice)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._swept:  # once per process: what a killed writer left behind
                sweep_stale_temps(self.folder, TEMP_PREFIX)
                self._swept = True
            write_atomic(target, data, 0o600, prefix=TEMP_PREFIX)  # mail may carry an approval link
        except PermissionError as exc:
            raise PermanentError(f"mail folder {self.folder}: permission denied",
                                 path=str(self.folder)) from exc
        except OSError as exc:
            raise TransientError(f"mail folder {self.folder}: {exc.strerror or exc}",
                                 path=str(self.folder)) from exc

    def check(self) -> Health:
        """For ``certflow doctor``: the folder exists (or can be made) and is writable."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.folder):
                pass
        except OSError as exc:
            raise TransientError(f"mail folder {self.folder} is not writable: "
                                 f"{exc.strerror or exc}", path=str(self.folder)) from exc
        return Health(f"mail folder {self.folder} writable")


KIND = AdapterKind("notify", "folder", "RFC 5322 `.eml` files in a folder", (
    Setting("folder", "path", "var/mail", "Where the `.eml` files are written (mode 0600)."),
), lambda settings, wiring: FolderNotifier(settings["folder"], builder_from(settings, wiring.now)))
