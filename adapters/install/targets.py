"""All-or-nothing installation of a certificate bundle on a group of web servers.

The part every installer shares, whatever carries the files (local directories here;
SSH/SFTP or a control-panel API later): prepare the files, stage them on every target,
swap them in, reload, verify by TLS handshake, and roll everything back when any
target fails, so every server serves what it served before.

A transport is a ``TargetSession`` (stage / swap / rollback / reload / cleanup) for one
target; an installer is an ``AllOrNothingInstaller`` subclass that opens those sessions.
Sessions raise ``StepFailed`` (or ``OSError``) with a one-line, secret-free detail; this
module names the target and raises ``adapters.base.TransientError``.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from adapters.base import BadInput, Bundle, Target, TransientError
from adapters.common.spki import same_public_key
from adapters.common.names import is_host_name
from adapters.install.tls_probe import served_fingerprint

log = logging.getLogger(__name__)

CERT_MODE = 0o644
KEY_MODE = 0o600

# Pause before each verify retry: a reload (e.g. nginx's SIGHUP) takes effect asynchronously.
_VERIFY_PAUSES = (0.25, 0.5, 1.0, 2.0)

FINGERPRINT_SHOWN = 16  # hex digits of a fingerprint quoted in messages


class StepFailed(Exception):
    """A session step failed on its target; the message is one line with no secrets."""


@dataclass(frozen=True)
class InstallFile:
    """One file of a target's ``<common name>/`` directory."""

    name: str
    content: bytes = b""
    mode: int = CERT_MODE

    def __repr__(self) -> str:  # content may be a private key
        return f"InstallFile({self.name!r}, mode={self.mode:o})"


class TargetSession(Protocol):
    """One target's side of an installation; the installer drives it in this order:

    ``stage`` every target, then ``swap`` every target, then ``reload``; on any failure
    ``rollback`` the targets already swapped; ``cleanup`` always, last.
    """

    target: Target

    def stage(self, files: Sequence[InstallFile]) -> None:
        """Put the new files next to the live ones without changing what is served;
        remember the live versions so ``rollback`` can restore them."""

    def swap(self) -> None:
        """Make the staged files live (each atomically)."""

    def rollback(self) -> None:
        """Restore what was live before ``swap`` (remove files that did not exist)."""

    def reload(self) -> None:
        """Run the target's reload command, if it has one."""

    def cleanup(self) -> None:
        """Remove staged leftovers and forget backups. Must not raise."""


def safe_directory_name(common_name: str) -> str:
    """The common name as a single path component: LDH labels and dots, nothing else.

    Raise BadInput for anything that could name another directory ('..', '/', '*', ...).
    """
    if (
        not isinstance(common_name, str)
        or len(common_name) > 253
        or not is_host_name(common_name)
    ):
        raise BadInput(
            "common_name",
            f"common name {common_name!r:.80} is not a host name usable as a directory name",
            common_name=common_name,
        )
    return common_name


def certificate_fingerprint(certificate_pem: str) -> str:
    """SHA-256 of the certificate's DER, lowercase hex."""
    certificate = _load_certificate(certificate_pem)
    return certificate.fingerprint(hashes.SHA256()).hex()


def bundle_files(bundle: Bundle) -> tuple[InstallFile, ...]:
    """cert, chain, fullchain and privkey as files, after checking the key fits the cert.

    The private key goes last so that, while swapping, the certificate files change first.
    """
    safe_directory_name(bundle.common_name)
    certificate = _load_certificate(bundle.certificate_pem)
    if bundle.chain_pem.strip():
        try:
            x509.load_pem_x509_certificates(_pem_bytes(bundle.chain_pem))
        except (ValueError, TypeError):
            raise BadInput("chain", "chain is not a list of PEM X.509 certificates") from None
    try:
        key = serialization.load_pem_private_key(bundle.private_key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadInput("private_key", "private key is not an unencrypted PEM key") from None
    if not same_public_key(key.public_key(), certificate.public_key()):
        raise BadInput("private_key", f"private key does not match the certificate for {bundle.common_name}")
    return (
        InstallFile("cert.pem", _pem_bytes(bundle.certificate_pem)),
        InstallFile("chain.pem", _pem_bytes(bundle.chain_pem)),
        InstallFile("fullchain.pem", _pem_bytes(bundle.fullchain_pem)),
        InstallFile("privkey.pem", bytes(bundle.private_key_pem), KEY_MODE),
    )


class AllOrNothingInstaller:
    """adapters.base.Installer over any transport: subclasses implement ``open_session``.

    ``verify_timeout`` bounds one TLS handshake; ``verify_attempts`` handshakes are tried
    (with short pauses) before a target counts as serving the wrong certificate.
    """

    def __init__(self, verify_timeout: float = 10.0, verify_attempts: int = 5,
                 parallel: int = 1) -> None:
        if verify_attempts < 1 or parallel < 1:
            raise ValueError("verify_attempts and parallel must be at least 1")
        self.verify_timeout = verify_timeout
        self.verify_attempts = verify_attempts
        #: targets worked on at once in each step (1: one after the other)
        self.parallel = parallel

    def open_session(self, target: Target, directory: str) -> TargetSession:
        """A session that installs into ``<target.path>/<directory>/``."""
        raise NotImplementedError

    def install(self, bundle: Bundle, targets: Sequence[Target]) -> None:
        """Install ``bundle`` on every target or on none; raise TransientError naming
        the failing target. Installing the same bundle again is harmless."""
        files = bundle_files(bundle)
        expected = certificate_fingerprint(bundle.certificate_pem)
        sessions = [self.open_session(target, bundle.common_name) for target in targets]
        swapped: list[TargetSession] = []
        reloaded: list[TargetSession] = []
        try:
            self._each(sessions, "stage", lambda s: s.stage(files), [])
            # started sessions are listed first, so a half-swapped target is rolled back
            # too, and a half-happened reload is repeated after the rollback
            self._each(sessions, "swap", lambda s: s.swap(), swapped)
            self._each(sessions, "reload", lambda s: s.reload(), reloaded)
            self._each([s for s in sessions if s.target.verify], "verify",
                       lambda s: self._verify(s.target, bundle.common_name, expected), [])
        except BaseException as exc:
            failed = _roll_back(swapped, reloaded)
            if isinstance(exc, TransientError) and failed:
                exc.rollback_failed = failed
            raise
        finally:
            for session in sessions:
                _cleanup(session)
        log.info(
            "installed certificate %s for %s on %s",
            expected[:FINGERPRINT_SHOWN], bundle.common_name, ", ".join(t.name for t in targets),
        )

    def _each(self, sessions: Sequence[TargetSession], step: str, action,
              started: list[TargetSession]) -> None:
        """``action`` on every session, ``parallel`` at a time; after all finished, raise
        the first target's failure (in target order)."""
        if self.parallel == 1 or len(sessions) < 2:
            for session in sessions:
                started.append(session)
                _step(session, step, lambda s=session: action(s))
            return
        started.extend(sessions)
        with ThreadPoolExecutor(min(self.parallel, len(sessions)), "certflow-install") as pool:
            futures = [pool.submit(_step, s, step, lambda s=s: action(s)) for s in sessions]
        for future in futures:
            if future.exception() is not None:
                raise future.exception()

    def _verify(self, target: Target, common_name: str, expected: str) -> None:
        served = reason = ""
        for attempt in range(self.verify_attempts):
            if attempt:
                time.sleep(_VERIFY_PAUSES[min(attempt - 1, len(_VERIFY_PAUSES) - 1)])
            try:
                served = served_fingerprint(target.verify, common_name, self.verify_timeout)
            except TransientError as exc:
                served, reason = "", exc.message
                continue
            if served == expected:
                return
        if not served:
            raise TransientError(
                f"server {target.name} {target.verify}: {reason}",
                target=target.name, host=target.verify, step="verify",
            )
        raise TransientError(
            f"server {target.name} {target.verify} serves certificate "
            f"{served[:FINGERPRINT_SHOWN]}, expected {expected[:FINGERPRINT_SHOWN]}",
            target=target.name, host=target.verify, step="verify",
            found=served, expected=expected,
        )


def _step(session: TargetSession, step: str, action) -> None:
    """Run one session step; map its failure to TransientError naming the target."""
    target = session.target
    try:
        action()
    except (StepFailed, OSError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TransientError(
            f"install on server {target.name} ({target.path}) failed at {step}: {detail}",
            target=target.name, path=target.path, step=step, detail=detail,
        ) from exc


def _roll_back(swapped: Sequence[TargetSession], reloaded: Sequence[TargetSession]) -> list[str]:
    """Restore every swapped target, then reload those reloaded since, so they serve the
    old files again.

    Best effort: keep going past failures (logged) and return the targets not restored.
    """
    failed: list[str] = []
    for session in reversed(swapped):
        try:
            session.rollback()
        except Exception as exc:  # noqa: BLE001 - the other targets must still be restored
            failed.append(session.target.name)
            log.error("rollback on server %s (%s) failed: %s", session.target.name, session.target.path, exc)
    for session in reloaded:
        try:
            session.reload()
        except Exception as exc:  # noqa: BLE001
            log.warning("reload after rollback on server %s failed: %s", session.target.name, exc)
    return failed


def _cleanup(session: TargetSession) -> None:
    try:
        session.cleanup()
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real outcome
        log.warning("cleanup on server %s failed: %s", session.target.name, exc)


def _load_certificate(certificate_pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_pem_bytes(certificate_pem))
    except (ValueError, TypeError):
        raise BadInput("certificate", "certificate is not a PEM X.509 certificate") from None


def _pem_bytes(pem: str) -> bytes:
    return (pem.strip() + "\n").encode("ascii") if pem.strip() else b""
