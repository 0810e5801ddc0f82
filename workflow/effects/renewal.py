"""Renewals: exactly one renewal order per certificate once ``[renewal] at`` of its
lifetime has passed (or the CA's ACME Renewal Information window opens, RFC 9773).

"Exactly one" holds across daemon passes, restarts and two daemons: the ``orders``
table has a unique index on ``renewal_of`` and ``place`` checks it inside its
transaction.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from workflow.clock import parse_iso
from adapters.abilities import RenewalAdvisor
from adapters.base import AdapterError
from workflow.errors import InvalidTransition, NotFound, ValidationError

log = logging.getLogger("certflow.renewal")


def due_at(not_before: datetime, not_after: datetime, fraction: float) -> datetime:
    return not_before + (not_after - not_before) * fraction


def _advised(engine, order_id: str) -> datetime | None:
    """When the CA advises renewing (RenewalAdvisor, e.g. ACME ARI), or None."""
    ca = engine.adapters.ca
    if not isinstance(ca, RenewalAdvisor):
        return None
    pem = engine.store.certificate_pem(order_id)
    try:
        return ca.renewal_time(pem[0]).renew_at if pem else None
    except AdapterError as exc:  # advice only: without it the fraction decides
        log.warning("renewal advice for %s unavailable: %s", order_id, exc.message)
        return None


def candidates(engine) -> list[dict]:
    """Orders in a final state that carries a certificate, without a renewal yet."""
    lifecycle = engine.lifecycle
    done = tuple(s for s in lifecycle.final_states if s in lifecycle.certificate_states)
    return engine.store.renewal_candidates(done)


def open_renewals(engine) -> list[str]:
    """Open the renewals that are due now; return their order ids."""
    cfg = engine.config["renewal"]
    now = engine.now()
    opened = []
    for row in candidates(engine):
        not_before, not_after = parse_iso(row["not_before"]), parse_iso(row["not_after"])
        due = due_at(not_before, not_after, cfg["at"])
        if now >= due_at(not_before, not_after, 0.5):
            advised = _advised(engine, row["id"])
            if advised is not None:
                due = advised
        if now < due:
            continue
        old = engine.get(row["id"])
        contract = engine.config.contracts.get(old.contract)
        if not contract or contract.get("status") != "active":
            engine.schedule_notice(old.id, "renewal_blocked", f"{old.id}:renewal_blocked", now)
            engine.schedule_notice(old.id, "renewal_blocked", f"{old.id}:renewal_blocked:operator",
                                   now, to="operator")
            continue
        try:
            new = renew(engine, old)
        except ValidationError as exc:
            if exc.field == "renewal_of":
                continue  # another daemon opened it first
            log.error("renewal of %s refused: %s", old.id, exc)
            continue
        except (InvalidTransition, NotFound) as exc:
            log.error("renewal of %s refused: %s", old.id, exc)
            continue
        opened.append(new.id)
    return opened


def renew(engine, old, actor: str = "renewal"):
    """Place the renewal of order ``old`` now; paid at once with ``[renewal] auto_pay``,
    else the customer is reminded before the certificate expires. ValidationError
    (field ``renewal_of``) when it already has one."""
    cfg = engine.config["renewal"]
    now = engine.now()
    new = engine.place(actor=actor, common_name=old.common_name,
                       organization=old.organization, unit=old.unit, locality=old.locality,
                       prefecture=old.prefecture, country=old.country, plan=old.plan,
                       contract=old.contract, email=old.email, validation=old.validation,
                       approver=old.approver if old.validation == "email" else None,
                       language=old.language, renewal_of=old.id)
    if new.state != "ordered":
        return new
    if cfg["auto_pay"]:
        return engine.fire(new.id, "pay", actor=f"{actor}:auto_pay")
    not_after = parse_iso(old.certificate.not_after)
    for days in cfg["payment_reminder_days"]:
        at = not_after - timedelta(days=days)
        if at > now:
            engine.schedule_notice(new.id, "renewal_payment_due",
                                   f"{new.id}:renewal_payment_due:{days}d", at, bound=True)
    return new
