"""Protocols and value types the engine exchanges with adapters.

An adapter reports its outcome by returning a value; the engine turns it into a trigger.
Failures are raised as one of the errors below, mapped from vendor exceptions at the
adapter edge (``raise TransientError(...) from exc``) so nothing vendor-specific escapes:

    AdapterError
     ├── TransientError   try again later (network down, CA busy); ``retry_after`` seconds
     └── PermanentError   retrying will not help; the engine holds the order
          └── Refused     the CA / registry refused the order; the engine rejects it

Every call that changes something outside carries an ``idempotency_key`` derived from
(order, event seq, effect): repeating a call with the same key must not repeat its effect.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, Sequence, runtime_checkable

from states.errors import CertflowError


class AdapterError(CertflowError):
    """Base of adapter failures. ``fields`` is the vocabulary of values an adapter may
    attach (what the failure was about); each is an attribute, None when not given."""

    fields = ("field", "value", "action", "domain", "names", "path", "url", "host", "port",
              "status", "http_status", "code", "problem", "detail", "application_id",
              "order_url", "directory", "server", "source", "command", "kind", "template",
              "filename", "language", "validation", "offered", "missing", "expected", "found",
              "target", "step", "record", "exit_code")


class BadInput(CertflowError):
    """Input from outside (a CSR, a certificate, an approver address, a token, a setting)
    refused. ``field`` names what was wrong; the message is one line, safe to show (no
    secrets). The CLI maps it to exit 2 with nothing written.
    """

    fields = ("field", "value", "path", "mode", "name", "domain", "record", "algorithm",
              "key_size", "curve", "missing", "extra", "approver", "common_name", "kinds",
              "validity_seconds")

    def __init__(self, field: str, message: str, **values: object) -> None:
        super().__init__(message, field=field, **values)


class TransientError(AdapterError):
    """Try again later; ``retry_after`` seconds when the other side said how long."""

    fields = ("retry_after", "rollback_failed")


class PermanentError(AdapterError):
    """Retrying will not help: the engine holds the order for the operator."""


class Refused(PermanentError):
    """The other side said no for good: the order ends ``rejected`` (or, with
    ``trigger="cancel"``, ``cancelled``)."""

    fields = ("trigger",)

    def __init__(self, message: str, trigger: str = "reject", **values: object) -> None:
        super().__init__(message, trigger=trigger, **values)


# --- values -------------------------------------------------------------------------


@dataclass(frozen=True)
class DistinguishedName:
    common_name: str
    organization: str
    locality: str
    prefecture: str
    country: str
    unit: str | None = None


@dataclass(frozen=True)
class Challenge:
    """Something to publish so a CA can see we control a name.

    kind "http": ``name`` is a path under the webroot, e.g.
    ``.well-known/pki-validation/<random>.txt`` or ``.well-known/acme-challenge/<token>``;
    kind "dns": ``name`` is the TXT record owner, e.g. ``_acme-challenge.example.jp``.
    ``content`` is what must be served; it is not secret once published but is never
    written to events or exports.
    """

    kind: str
    domain: str
    name: str
    content: str


@dataclass(frozen=True)
class Application:
    """What the engine asks a CA for."""

    order_id: str
    idempotency_key: str
    common_name: str
    names: tuple[str, ...]          # common name first, then the other SANs
    csr_pem: str
    validation: str                 # file | email | email-whois | http-01 | dns-01
    approver: str | None = None     # mail validation: who approves
    deadline_at: datetime | None = None
    language: str = "ja"
    not_after: datetime | None = None  # the lifetime the dated policy allows
    webroot: str | None = None      # where http challenges are published for this order


@dataclass(frozen=True)
class Submission:
    """The CA took the application. ``challenges`` must be published before polling."""

    application_id: str
    challenges: tuple[Challenge, ...] = ()
    approver: str | None = None


@dataclass(frozen=True)
class Pending:
    """Not done yet, and not a failure (a CA still validating): ask again after
    ``retry_after`` seconds. certflow's one "not yet" type: effect handlers return it
    too (``workflow.effects.outcome.Later`` is this class)."""

    retry_after: float = 60.0
    detail: str = ""


@dataclass(frozen=True)
class Issued:
    certificate_pem: str
    chain_pem: str


@dataclass(frozen=True)
class Contact:
    email: str | None
    name: str | None = None
    organization: str | None = None
    source: str = ""                 # "whois host:port", "rdap URL"
    privacy: str | None = None       # why the contact is a privacy/proxy one, if it is


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/x-pem-file"


@dataclass(frozen=True)
class Notice:
    """A message to send; the notifier renders ``template`` in ``language``."""

    template: str                    # order_received, work_started, approval_request, ...
    to: str
    language: str
    context: dict = field(repr=False)  # may hold the approver's link: keep it out of logs
    idempotency_key: str = ""
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Target:
    """One web server of a contract: where files go, how it reloads, where to check."""

    name: str
    path: str
    reload: str | None = None
    verify: str | None = None        # host:port for a TLS handshake check


@dataclass(frozen=True)
class Bundle:
    common_name: str
    certificate_pem: str
    chain_pem: str
    private_key_pem: bytes = field(repr=False)
    idempotency_key: str = ""

    @property
    def fullchain_pem(self) -> str:
        return self.certificate_pem.rstrip("\n") + "\n" + self.chain_pem.lstrip("\n")


# --- protocols ----------------------------------------------------------------------


@runtime_checkable
class CertificateAuthority(Protocol):
    """A CA as a resumable exchange: submit once, then poll until issued.

    Two declared abilities let the engine refuse at intake what the CA cannot do:
    ``validation_methods`` (the order validations it can carry out) and
    ``names_from_application`` (True when it issues for the application's names, so a
    customer CSR may carry a subset of them; False when the CSR's names must equal
    the order's, as ACME's finalize demands).
    """

    validation_methods: frozenset[str]
    names_from_application: bool

    def submit(self, application: Application) -> Submission:
        """Apply; the same idempotency_key returns the same application, never a second."""

    def poll(self, application_id: str, application: Application) -> Issued | Pending:
        """Check progress (and answer published challenges). Raise Refused when it failed."""

    def cancel(self, application_id: str, order_id: str | None = None) -> None:
        """Withdraw an application (approval expired, customer cancelled). Idempotent.
        With ``order_id``, only an application this CA recorded for that order: an id
        that names another order's application (or none of ours) cancels nothing."""


class Validator(Protocol):
    """Publishes and removes challenges (webroot files, DNS records)."""

    def place(self, challenge: Challenge, webroot: str | None) -> None: ...

    def remove(self, challenge: Challenge, webroot: str | None) -> None: ...


class ContactFinder(Protocol):
    def lookup(self, domain: str) -> Contact:
        """The domain administrator's contact. TransientError on timeouts."""


class Notifier(Protocol):
    def send(self, notice: Notice) -> None:
        """Deliver once per idempotency_key as far as the medium allows."""


class Installer(Protocol):
    def install(self, bundle: Bundle, targets: Sequence[Target]) -> None:
        """All-or-nothing over targets: on failure every target serves what it did before.
        Raise TransientError naming the failing target."""
