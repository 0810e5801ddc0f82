"""Delivery for application-only orders: the customer installs the certificate.

The customer made the key and CSR, so the delivery carries the certificate and the
intermediate chain (PEM) and never a private key.
"""
from __future__ import annotations

from cryptography import x509

from adapters.base import Attachment, BadInput
from adapters.install.targets import safe_directory_name


def delivery_attachments(
    bundle_cert_pem: str, chain_pem: str, common_name: str, *, include_fullchain: bool = False
) -> tuple[Attachment, ...]:
    """``<cn>.crt`` (the certificate), ``<cn>.chain.crt`` (the intermediates, when there
    are any) and, with ``include_fullchain``, ``<cn>.fullchain.crt`` (both, for nginx).

    Raise BadInput when a PEM is not certificates only or the common name is not a
    plain host name (it becomes a file name).
    """
    cn = safe_directory_name(common_name)
    certificate = _certificates_pem(bundle_cert_pem, "certificate", required=True)
    chain = _certificates_pem(chain_pem, "chain", required=False)
    attachments = [Attachment(f"{cn}.crt", certificate)]
    if chain:
        attachments.append(Attachment(f"{cn}.chain.crt", chain))
    if include_fullchain:
        attachments.append(Attachment(f"{cn}.fullchain.crt", certificate + chain))
    return tuple(attachments)


def _certificates_pem(pem: str, field: str, required: bool) -> bytes:
    """The PEM normalised to bytes, after checking it holds certificates and nothing else."""
    text = (pem or "").strip()
    if not text:
        if required:
            raise BadInput(field, f"{field} is empty")
        return b""
    if "PRIVATE KEY" in text:
        # Say what is wrong, never echo the text: it holds a key.
        raise BadInput(field, f"{field} contains a private key; it must not be sent")
    data = (text + "\n").encode("ascii", "replace")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise BadInput(field, f"{field} is not PEM X.509 certificates") from None
    if text.count("-----BEGIN") != len(certificates):
        raise BadInput(field, f"{field} holds PEM blocks that are not certificates")
    return data
