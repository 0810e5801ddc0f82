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
from workflow.errors import CertflowError

log = logging.getLogger("certflow.renewal")


def due_at(not_before: datetime, not_after: datetime, fraction: float) -> datetime:
    return not_before + (not_after - not_before) * fraction


def _ari_start(engine, order_id: str) -> datetime | None:
    ca = engine.adapters.ca
    if not hasattr(ca, "renewal_info"):
        return None
    pem = engine.store.conn.execute("SELECT cert_pem FROM certificates WHERE order_id = ?",
                                    (order_id,)).fetchone()
    try:
        window = ca.renewal_info(pem[0]) if pem else None
    except Exception as exc:  # ARI is advice: without it the fraction decides
        log.warning("renewal info for %s unavailable: %s", order_id, exc)
        return None
    return window[0] if window else None


def candidates(engine) -> list[dict]:
    return [dict(r) for r in engine.store.conn.execute(
        "SELECT o.id, o.contract, c.not_before, c.not_after FROM orders o "
        "JOIN certificates c ON c.order_id = o.id "
        "WHERE o.state IN ('installed', 'delivered') "
        "AND json_extract(o.data, '$.imported') IS NULL "  # history from elsewhere: not ours to renew
        "AND NOT EXISTS (SELECT 1 FROM orders r WHERE r.renewal_of = o.id)")]


def open_renewals(engine) -> list[str]:
    """Open the renewals that are due now; return their order ids."""
    cfg = engine.config["renewal"]
    now = engine.now()
    opened = []
    for row in candidates(engine):
        not_before, not_after = parse_iso(row["not_before"]), parse_iso(row["not_after"])
        due = due_at(not_before, not_after, cfg["at"])
        if engine.config["ca"]["kind"] == "acme" and now >= due_at(not_before, not_after, 0.5):
            ari = _ari_start(engine, row["id"])
            if ari is not None:
                due = ari
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
            new = engine.place(actor="renewal", common_name=old.common_name,
                               organization=old.organization, unit=old.unit, locality=old.locality,
                               prefecture=old.prefecture, country=old.country, plan=old.plan,
                               contract=old.contract, email=old.email, validation=old.validation,
                               approver=old.approver if old.validation == "email" else None,
                               language=old.language, renewal_of=old.id)
        except CertflowError as exc:
            if getattr(exc, "field", None) == "renewal_of":
                continue  # another daemon opened it first
            log.error("renewal of %s refused: %s", old.id, exc)
            continue
        opened.append(new.id)
        if new.state != "ordered":
            continue
        if cfg["auto_pay"]:
            engine.fire(new.id, "pay", actor="renewal:auto_pay")
        else:
            for days in cfg["payment_reminder_days"]:
                at = not_after - timedelta(days=days)
                if at > now:
                    engine.schedule_notice(new.id, "renewal_payment_due",
                                           f"{new.id}:renewal_payment_due:{days}d", at, bound=True)
    return opened
