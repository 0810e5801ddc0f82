"""Pure functions over ACME values for the ACME adapter: the RFC 9773 CertID, names and
challenge types checked before anything is sent, and why an authorization failed."""
from __future__ import annotations

import base64
import re

import josepy as jose
from acme import challenges as acme_challenges
from acme import messages
from cryptography import x509

from adapters.base import BadInput, Refused
from adapters.common.names import is_host_name
from adapters.ca.acme_edge import problem_refusal
from adapters.ca.acme_store import OrderRecord

#: application.validation -> ACME challenge type ("file" is our name for http-01 files)
CHALLENGE_TYPES = {"http-01": "http-01", "file": "http-01", "dns-01": "dns-01"}


def renewal_cert_id(cert_pem: str) -> str:
    """RFC 9773 CertID: base64url(AKI keyIdentifier) "." base64url(serial DER content)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode()
                                              if isinstance(cert_pem, str) else cert_pem)
    except ValueError as exc:
        raise BadInput("certificate", "not a readable PEM certificate") from exc
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound as exc:
        raise BadInput("certificate", "certificate has no authority key identifier") from exc
    if aki.key_identifier is None:
        raise BadInput("certificate", "certificate's authority key identifier has no keyid")
    serial = cert.serial_number
    # DER INTEGER content: big-endian two's complement, with room for the sign bit
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
    return f"{b64url(aki.key_identifier)}.{b64url(serial_bytes)}"


def status_name(status: messages.Status | None) -> str:
    return status.name if status is not None else ""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def check_hmac_key(value: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", value.strip()):
        raise BadInput("eab_hmac_key", "eab_hmac_key must be base64url text")
    if not jose.b64.b64decode(value.strip()):
        raise BadInput("eab_hmac_key", "eab_hmac_key is empty")


def check_csr(csr_pem: str) -> None:
    try:
        x509.load_pem_x509_csr(csr_pem.encode())
    except (ValueError, AttributeError) as exc:
        raise BadInput("csr", "the order's CSR is not a readable PEM CSR") from exc


def acme_challenge_type(validation: str) -> str:
    try:
        return CHALLENGE_TYPES[validation]
    except KeyError:
        raise BadInput("validation", f"ACME cannot validate by {validation!r}; use "
                                     "http-01, file or dns-01") from None


def identifiers(names: tuple[str, ...]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for name in names:
        text = name.strip().lower().rstrip(".") if isinstance(name, str) else ""
        if not is_host_name(text.removeprefix("*.")):
            raise BadInput("names", f"not an ASCII DNS name for ACME: {name!r}")
        name = text
        if name not in cleaned:
            cleaned.append(name)
    if not cleaned:
        raise BadInput("names", "an ACME order needs at least one name")
    return tuple(cleaned)


def pick(authz: messages.AuthorizationResource, challenge_type: str
          ) -> messages.ChallengeBody:
    for challb in authz.body.challenges:
        if challb.chall.typ == challenge_type and isinstance(
                challb.chall, (acme_challenges.HTTP01, acme_challenges.DNS01)):
            return challb
    domain = authz.body.identifier.value
    offered = ", ".join(c.chall.typ for c in authz.body.challenges) or "none"
    raise Refused(f"ACME CA offers no {challenge_type} challenge for {domain} "
                  f"(offers {offered})", domain=domain, offered=offered)


def authorization_failure(authz: messages.AuthorizationResource,
                           record: OrderRecord) -> Refused | None:
    """Why this authorization ended the order, or None while it still may succeed."""
    status = status_name(authz.body.status)
    domain = authz.body.identifier.value
    if status in ("deactivated", "expired", "revoked"):
        # withdrawn (cancel()) or left unanswered too long: the application is cancelled
        return Refused(f"ACME authorization for {domain} is {status}", trigger="cancel",
                       domain=domain, order_url=record.order_url, status=status)
    if status != "invalid":
        return None
    for challb in authz.body.challenges:
        if challb.error is not None:
            # the detail quotes the challenge URL; its token stays out of the reason (which
            # goes to events, exports and the customer's mail), as it does for challenge names
            token = challb.chall.encode("token") if isinstance(
                challb.chall, acme_challenges.KeyAuthorizationChallenge) else None
            return problem_refusal(f"ACME validation of {domain} failed", challb.error,
                                    record.order_url, redact=token, domain=domain)
    return Refused(f"ACME authorization for {domain} is invalid (the CA gave no reason)",
                   domain=domain, order_url=record.order_url)
