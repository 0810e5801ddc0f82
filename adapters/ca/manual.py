"""A CA driven by mail or a web form: the operator applies by hand with the CSR from
``certflow order show`` and records what the CA sent with ``certflow order issue``."""
from __future__ import annotations

from adapters.base import Application, Issued, Pending, Submission
from adapters.settings import AdapterKind

#: how often the daemon looks (the answer only ever comes from the operator)
MANUAL_POLL_SECONDS = 6 * 3600.0


class ManualCA:
    #: the operator applies with the CA's form: the CA mails the approver or checks a file,
    #: and takes the names from the form, not from the CSR
    validation_methods = frozenset({"file", "email", "email-whois"})
    names_from_application = True

    def submit(self, application: Application) -> Submission:
        return Submission(application_id=f"manual:{application.idempotency_key}",
                          approver=application.approver)

    def poll(self, application_id: str, application: Application) -> Issued | Pending:
        return Pending(MANUAL_POLL_SECONDS, "waiting for the operator to record the certificate")

    def cancel(self, application_id: str, order_id: str | None = None) -> None:
        return None


KIND = AdapterKind("ca", "manual", "the operator applies by hand and records the answer", (),
                   lambda settings, wiring: ManualCA())
