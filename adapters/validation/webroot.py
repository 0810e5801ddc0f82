"""Publishing domain-validation challenges: files under a webroot, TXT records by a hook.

* ``WebrootValidator`` writes http challenges (BR 3.2.2.4.18 ``pki-validation`` files and
  ACME http-01 tokens) under a webroot, atomically, and never outside it.
* ``DnsHookValidator`` runs an operator's command to add/remove dns challenge TXT records.
* ``CompositeValidator`` sends each challenge to the one that handles its kind.
* ``fetch_challenge`` is the checking side: an HTTP GET like a CA's, optionally sent to a
  fixed address (curl's ``--connect-to``).
"""
from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

import httpx
import idna

from adapters.base import BadInput, Challenge, PermanentError, TransientError, Validator
from adapters.common.hostport import format_host_port, parse_host_port
from adapters.common.names import is_host_name

log = logging.getLogger(__name__)

#: the only directories challenges may be published in, relative to the webroot
CHALLENGE_DIRS = (".well-known/pki-validation", ".well-known/acme-challenge")
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}")
_FIELD = "validation.path"
_MAX_BODY = 64 * 1024


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
            raise PermanentError(f"webroot {chosen} does not exist", webroot=chosen) from None
        except OSError as exc:
            raise PermanentError(f"webroot {chosen} is not usable: {exc.strerror}",
                                 webroot=chosen) from exc
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


class DnsHookValidator:
    """Publishes dns challenges by running an operator's hook command (no shell).

    The hook is called as ``<command...> add|remove <record name> <value>`` with the same
    values in ``CERTFLOW_DNS_ACTION``, ``CERTFLOW_DNS_NAME`` and ``CERTFLOW_DNS_VALUE``.
    Exit 0 means done; ``remove`` of an absent record should also exit 0.
    """

    def __init__(self, command: str, timeout: float = 30) -> None:
        try:
            self.argv = shlex.split(command or "")
        except ValueError as exc:
            raise BadInput("validation.dns_hook", f"validation.dns_hook cannot be split: {exc}",
                           value=command) from exc
        if not self.argv:
            raise BadInput("validation.dns_hook", "validation.dns_hook is empty", value=command)
        self.timeout = timeout

    def place(self, challenge: Challenge, webroot: str | None) -> None:
        self._run("add", challenge)

    def remove(self, challenge: Challenge, webroot: str | None) -> None:
        self._run("remove", challenge)

    def _run(self, action: str, challenge: Challenge) -> None:
        if challenge.kind != "dns":
            raise PermanentError(f"dns hook cannot publish a {challenge.kind!r} challenge",
                                 kind=challenge.kind)
        name = challenge.name
        if "." not in (name or "") or not is_host_name(name, underscore=True, trailing_dot=True):
            raise BadInput("validation.record", f"dns record name {name!r} is not a domain name",
                           record=name)
        value = challenge.content
        if not value or any(ch in value for ch in "\r\n\x00"):
            raise BadInput("validation.value", "dns record value is empty or spans lines",
                           record=name)
        env = dict(os.environ, CERTFLOW_DNS_ACTION=action, CERTFLOW_DNS_NAME=name,
                   CERTFLOW_DNS_VALUE=value)
        program = self.argv[0]
        try:
            done = subprocess.run([*self.argv, action, name, value], env=env,
                                  capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"dns hook {program} {action} {name} timed out after "
                                 f"{self.timeout:g}s", command=program, action=action,
                                 record=name) from exc
        except OSError as exc:
            # a missing or non-executable hook will not fix itself by retrying
            raise PermanentError(f"dns hook {program} cannot be run: {exc.strerror}",
                                 command=program) from exc
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = lines[-1].strip() if lines else ""
            raise TransientError(f"dns hook {program} {action} {name} exited "
                                 f"{done.returncode}" + (f": {last}" if last else ""),
                                 command=program, action=action, record=name,
                                 exit_code=done.returncode, stderr=last)
        log.info("dns hook %s %s %s: done", program, action, name)


class CompositeValidator:
    """Dispatches challenges by kind: "http" to ``http``, "dns" to ``dns``."""

    def __init__(self, http: Validator, dns: Validator | None = None) -> None:
        self.http = http
        self.dns = dns

    def place(self, challenge: Challenge, webroot: str | None) -> None:
        self._for(challenge).place(challenge, webroot)

    def remove(self, challenge: Challenge, webroot: str | None) -> None:
        self._for(challenge).remove(challenge, webroot)

    def _for(self, challenge: Challenge) -> Validator:
        if challenge.kind == "http":
            return self.http
        if challenge.kind == "dns":
            if self.dns is None:
                raise PermanentError("dns challenges need [validation] dns_hook",
                                     kind=challenge.kind, domain=challenge.domain)
            return self.dns
        raise PermanentError(f"unknown challenge kind {challenge.kind!r}", kind=challenge.kind)


def fetch_challenge(domain: str, name: str, connect_to: str | None, timeout: float) -> str | None:
    """GET ``http://<domain>/<name>`` as a CA would; the body on 200, else None.

    With ``connect_to`` ("host:port") the request goes to that address with
    ``Host: <domain>``, like ``curl --connect-to``. Redirects are not followed. Network
    failures, timeouts and non-200 answers all return None (the CA simply tries again).
    """
    relpath = challenge_relpath(name)
    try:
        host = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise BadInput("common_name", f"{domain!r} is not a domain name", domain=domain) from exc
    if connect_to:
        authority = format_host_port(*parse_host_port(connect_to, "ca.connect_to"))
    else:
        authority = host
    url = f"http://{authority}/{relpath}"
    try:
        # trust_env=False: a proxy from the environment must not stand in for the site
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            with client.stream("GET", url, headers={"Host": host}) as response:
                if response.status_code != 200:
                    log.info("validation fetch %s (Host %s): HTTP %s", url, host,
                             response.status_code)
                    return None
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_BODY:
                        log.info("validation fetch %s: body over %d bytes", url, _MAX_BODY)
                        return None
    except httpx.HTTPError as exc:
        log.info("validation fetch %s (Host %s) failed: %s", url, host, exc)
        return None
    return body.decode("utf-8", "replace")
