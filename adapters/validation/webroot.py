"""``WebrootValidator``: http challenges (BR 3.2.2.4.18 ``pki-validation`` files and ACME
http-01 tokens) written under a webroot, atomically, and never outside it."""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path, PurePosixPath

from adapters.base import BadInput, Challenge, PermanentError, TransientError

log = logging.getLogger(__name__)

#: the only directories challenges may be published in, relative to the webroot
CHALLENGE_DIRS = (".well-known/pki-validation", ".well-known/acme-challenge")
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}")
_FIELD = "validation.path"


def challenge_relpath(name: str) -> PurePosixPath:
    """Check a challenge path such as ``.well-known/pki-validation/<random>.txt``.

    It must be relative, inside one of CHALLENGE_DIRS, and end in one plain file name
    (letters, digits, ``_ - .``; no leading dot, no ``..``). Raises BadInput otherwise.
    """
    if not isinstance(name, str) or not name:
        raise BadInput(_FIELD, "validation path is empty", path=name)
    if name.startswith("/") or "\\" in name or "\x00" in name:
        raise BadInput(_FIELD, f"validation path {name!r} must be relative to the webroot",
                       path=name)
    directory, _, file_name = name.rpartition("/")
    if directory not in CHALLENGE_DIRS:
        raise BadInput(_FIELD, f"validation path {name!r} is not under "
                       f"{' or '.join(d + '/' for d in CHALLENGE_DIRS)}", path=name)
    if not _FILE_NAME.fullmatch(file_name) or ".." in file_name:
        raise BadInput(_FIELD, f"validation file name {file_name!r} is not a plain file name "
                       "([A-Za-z0-9_.-], no leading dot, no '..')", path=name)
    return PurePosixPath(directory, file_name)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class WebrootValidator:
    """Publishes http challenges as files under a webroot (the order's, else the default).

    ``place`` writes ``<webroot>/<challenge.name>`` atomically (temporary file in the same
    directory, then ``os.replace``), mode 0644, creating the challenge directories (and
    the webroot itself if missing). ``remove`` deletes the file; a missing file is fine.
    Nothing is ever written or deleted outside the webroot, symlinks included.
    """

    def __init__(self, default_webroot: str | None) -> None:
        self.default_webroot = default_webroot

    def place(self, challenge: Challenge, webroot: str | None) -> None:
        target = self._target(challenge, webroot, create=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".certflow-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(challenge.content.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise TransientError(f"cannot write validation file {target}: {exc.strerror}",
                                 path=str(target)) from exc
        except BaseException:
            _unlink_quietly(tmp)
            raise
        log.info("validation file placed: %s", target)

    def remove(self, challenge: Challenge, webroot: str | None) -> None:
        target = self._target(challenge, webroot, create=False)
        try:
            os.unlink(target)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise TransientError(f"cannot remove validation file {target}: {exc.strerror}",
                                 path=str(target)) from exc
        log.info("validation file removed: %s", target)

    def _target(self, challenge: Challenge, webroot: str | None, create: bool) -> Path:
        if challenge.kind != "http":
            raise PermanentError(f"webroot validator cannot publish a {challenge.kind!r} "
                                 "challenge", kind=challenge.kind)
        relpath = challenge_relpath(challenge.name)
        chosen = webroot or self.default_webroot
        if not chosen:
            raise PermanentError(f"no webroot configured for {challenge.domain}: set the "
                                 "contract's webroot or [validation] webroot",
                                 domain=challenge.domain)
        root_path = Path(chosen)
        try:
            if create:
                root_path.mkdir(parents=True, exist_ok=True)
            root = root_path.resolve(strict=True)
        except FileNotFoundError:
            if not create:
                return root_path / relpath  # nothing was ever placed there: nothing to remove
            raise PermanentError(f"webroot {chosen} does not exist", path=chosen) from None
        except OSError as exc:
            raise PermanentError(f"webroot {chosen} is not usable: {exc.strerror}",
                                 path=chosen) from exc
        directory = root / relpath.parent
        # Resolve before creating anything, so a symlinked .well-known pointing elsewhere
        # cannot make us create directories outside the root; check again after.
        self._check_inside(directory.resolve(), root, challenge.name)
        if create:
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o755)
            except OSError as exc:
                raise TransientError(f"cannot create {directory}: {exc.strerror}",
                                     path=str(directory)) from exc
            self._check_inside(directory.resolve(strict=True), root, challenge.name)
        return directory / relpath.name

    @staticmethod
    def _check_inside(directory: Path, root: Path, name: str) -> None:
        if not _inside(directory, root):
            raise BadInput(_FIELD, f"validation path {name!r} leaves the webroot "
                           f"(resolves to {directory})", path=name)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
