"""What certificate does a TLS server serve for a name? (installer verify, doctor)."""
from __future__ import annotations

import hashlib
import socket
import ssl

from adapters.base import TransientError
from adapters.common.hostport import parse_host_port


def served_fingerprint(host_port: str, server_name: str, timeout: float = 10.0) -> str:
    """SHA-256 (lowercase hex) of the certificate served at ``host_port`` for SNI
    ``server_name``. Nothing is verified: we only want to know which certificate it is.

    Raise TransientError when no TLS handshake completes within ``timeout`` seconds,
    BadInput (field ``verify``) when ``host_port`` is not host:port.
    """
    host, port = parse_host_port(host_port, "verify")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for the reader
        raise TransientError(
            f"TLS handshake with {host_port} for {server_name} failed: {_reason(exc)}",
            host=host_port, domain=server_name,
        ) from exc
    if not der:
        raise TransientError(
            f"{host_port} sent no certificate for {server_name}",
            host=host_port, domain=server_name,
        )
    return hashlib.sha256(der).hexdigest()


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__
