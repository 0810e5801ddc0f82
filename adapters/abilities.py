"""Optional abilities of adapters, each a runtime-checkable Protocol.

The engine and the operator tools ask ``isinstance(adapter, Ability)`` instead of
comparing kind names or probing attributes:

    Checkable       ``check()`` for ``certflow doctor``: is it usable, without changing anything
    RenewalAdvisor  the CA suggests when to renew (ACME Renewal Information, RFC 9773)
    PublishesRoot   the CA's own root and chain (``certflow ca root``, trusted for its leaves)
    TakesApprovals  approval tokens mailed by the CA itself (``certflow ca approve``)
    ShowsApprovals  what a token is for, read only, and declining with it (the approval page)
    KeyMaker        private keys and CSRs for full-service orders
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Sequence, runtime_checkable

from adapters.base import DistinguishedName, Target


@dataclass(frozen=True)
class Health:
    """What ``check()`` found: one line, and a note when usable but worth a look."""

    detail: str
    note: str | None = None


@runtime_checkable
class Checkable(Protocol):
    def check(self) -> Health:
        """Raise AdapterError/BadInput (one-line message, no secrets) when not usable."""


@dataclass(frozen=True)
class RenewalAdvice:
    """``renew_at``: a moment inside the CA's window (None: the CA gives no advice);
    ``ask_again_at``: do not ask about this certificate before then."""

    renew_at: datetime | None
    ask_again_at: datetime


@runtime_checkable
class RenewalAdvisor(Protocol):
    def renewal_time(self, cert_pem: str) -> RenewalAdvice: ...


@runtime_checkable
class PublishesRoot(Protocol):
    def root_pem(self) -> str: ...


@runtime_checkable
class TakesApprovals(Protocol):
    def approve(self, token: str) -> str: ...

    def applications(self) -> list[dict]: ...


@dataclass(frozen=True)
class ApprovalRequest:
    """What an approval token stands for; ``status`` pending | used (answered) | expired
    | withdrawn (the application was cancelled before its deadline)."""

    application_id: str
    order_id: str
    common_name: str
    names: tuple[str, ...]
    approver: str | None
    expires_at: datetime
    status: str


@runtime_checkable
class ShowsApprovals(Protocol):
    """The approval page: look a token up without using it, or decline with it."""

    def approval(self, token: str) -> ApprovalRequest | None: ...

    def decline(self, token: str) -> ApprovalRequest: ...


@runtime_checkable
class KeyMaker(Protocol):
    def generate_key(self, algorithm: str) -> bytes: ...

    def make_csr(self, key_pem: bytes, dn: DistinguishedName, names: Sequence[str]) -> str: ...

    def check_customer_csr(self, data: bytes | str, names: Sequence[str], *,
                           names_from_application: bool) -> str: ...

    def csr_command(self, names: Sequence[str], dn: DistinguishedName, *,
                    with_sans: bool) -> str: ...


@runtime_checkable
class SweepsLeftovers(Protocol):
    """Removes what a process killed mid-write left behind (its own temporary files)."""

    def sweep_leftovers(self, targets: Sequence[Target]) -> list[str]: ...


@runtime_checkable
class ChecksServers(Protocol):
    """``certflow doctor``: reach each remote server, log in, test its directory and reload
    program; one result per server with ``target``, ``step`` (None: passed) and ``detail``."""

    def check_servers(self, targets: Sequence[Target]) -> list: ...


@runtime_checkable
class LogsInRemotely(Protocol):
    """An installer that logs in to servers with its own key and pinned host keys."""

    def public_key(self) -> str: ...

    def trust_host(self, host_port: str, expect: str | None = None,
                   replace: bool = False) -> tuple[str, bool]: ...


#: an approval URL's token (``…?token=<TOKEN>``), as a CA that takes approvals mails it
APPROVAL_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_\-]{16,})")


def approval_tokens(text: str) -> list[str]:
    """The approval tokens in a mail's text, in order."""
    return APPROVAL_TOKEN.findall(text or "")


#: RFC 5280 §5.3.1 CRLReason codes of the reasons an operator may give
REVOCATION_REASONS: dict[str, int] = {
    "unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4,
    "cessationOfOperation": 5,
}


@runtime_checkable
class Revokes(Protocol):
    """The CA revokes a certificate it issued (local CA: its CRL; ACME: revokeCert).
    ``reason`` is a REVOCATION_REASONS name. Idempotent: revoking again is no error."""

    def revoke(self, cert_pem: str, reason: str) -> None: ...


@runtime_checkable
class PublishesCRL(Protocol):
    def crl_pem(self) -> str:
        """The current CRL (PEM), signed by the issuing CA (``certflow ca crl``)."""


@runtime_checkable
class ResendsApproval(Protocol):
    def resend_approval(self, application_id: str, language: str | None = None) -> str:
        """Mail the approval URL of a pending application again; returns the address.
        BadInput when the application takes no approval any more (approved, cancelled,
        its token used or expired)."""
