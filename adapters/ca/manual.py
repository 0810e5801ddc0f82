"""A CA driven by mail or a web form: the operator applies by hand with the CSR from
``certflow order show`` and records what the CA sent with ``certflow order issue``."""
from __future__ import annotations

from adapters.base import Application, Issued, Pending, Submission

#: how often the daemon looks (the answer only ever comes from the operator)
MANUAL_POLL_SECONDS = 6 * 3600.0


class ManualCA:
    def submit(self, application: Application) -> Submission:
        return Submission(application_id=f"manual:{application.idempotency_key}",
                          approver=application.approver)

    def poll(self, application_id: str, application: Application) -> Issued | Pending:
        return Pending(MANUAL_POLL_SECONDS, "waiting for the operator to record the certificate")

    def cancel(self, application_id: str, order_id: str | None = None) -> None:
        return None
