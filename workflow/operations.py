"""The operator's window onto the engine (issue 19): find orders, explain where one
stands, make its work due now, resend or redirect an approval, renew or revoke by hand,
and handle failed notifications. :class:`workflow.engine.Engine` exposes each as a
method of the same name; the CLI and the web console call those.

Each change is one command (one transaction). Talking to the CA (revoke, withdraw an
application, resend its approval mail) happens outside any transaction: before the
transition when the transition must not happen without it (revoke), after the commit
when it only follows it (withdrawing the application a new approver replaces).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Iterable, Iterator

from adapters.abilities import REVOCATION_REASONS, ResendsApproval, Revokes
from adapters.base import BadInput
from workflow.clock import iso
from workflow.errors import InvalidTransition, NotFound, ValidationError
from workflow.model import Order

log = logging.getLogger("certflow.operations")

MAIL_VALIDATIONS = ("email", "email-whois")
#: states where a new approver is taken: the CA has no application yet, or one waiting
#: for approval (withdrawn and made again)
APPROVER_STATES = ("ordered", "paid", "awaiting_approval")


def _positive(name: str, value, minimum: int = 1) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < minimum):
        raise ValidationError(name, f"{name} must be a whole number ≥ {minimum}, not {value!r}",
                              value)


def find(engine, states: Iterable[str] | str | None = None, contract: str | None = None,
         cn: str | None = None, email: str | None = None, expiring_within: int | None = None,
         renewal_of: str | None = None, limit: int | None = None,
         after: str | None = None) -> Iterator[Order]:
    """Orders matching every filter given, by id, streamed (rows carry no CSR).

    ``cn``: a substring of the common name or a SAN, as A-label or U-label;
    ``expiring_within``: days until the certificate's not_after (not yet expired);
    ``after``: an order id, the cursor of the previous page."""
    wanted = (states,) if isinstance(states, str) else tuple(states or ())
    known = engine.lifecycle.state_names
    for state in wanted:
        if state not in known:
            raise ValidationError("state", f"state {state!r} unknown: use one of "
                                  f"{', '.join(known)}", state)
    _positive("limit", limit)
    _positive("expiring_within", expiring_within, 0)
    expiring = None
    if expiring_within is not None:
        now = engine.now()
        expiring = (iso(now), iso(now + timedelta(days=expiring_within)))
    rows = engine.store.find_orders(wanted, contract, cn.strip() if cn else None, email,
                                    expiring, renewal_of, limit, after)
    return (Order.from_record(r) for r in rows)


def pending_effects(engine, order_id: str) -> list[dict]:
    """The order's outbox rows still to run: effect, param, attempts, next_at, last_error."""
    engine.get(order_id)
    return [{k: r[k] for k in ("effect", "param", "attempts", "next_at", "last_error")}
            for r in engine.store.pending_effects(order_id)]


def explain(engine, order_id: str) -> dict:
    """Where the order stands and why: its reason, deadline and what fires then, and
    its pending effects (``order show``)."""
    order = engine.get(order_id)
    deadline_at, trigger = engine.store.order_deadline(order_id)
    return {"reason": order.reason, "deadline_at": deadline_at, "deadline_trigger": trigger,
            "deadline_reason": engine.lifecycle.deadline_reason(trigger) if trigger else None,
            "pending": pending_effects(engine, order_id)}


def retry(engine, order_id: str, actor: str = "api") -> int:
    """Make every pending effect of the order due now, attempts kept; how many.
    InvalidTransition when nothing is pending."""
    with engine.command() as tx:
        row = engine.load(tx, order_id)
        count = tx.effects_due_now(order_id, iso(engine.now()))
        if not count:
            raise InvalidTransition(order_id, row["state"], "retry", "nothing is pending")
    log.info("order %s: %d pending effect(s) made due now by %s", order_id, count, actor)
    return count


def resend_approval(engine, order_id: str, actor: str = "api") -> str:
    """Mail the approval URL again, to the approver; returns the address. The same
    token is resent while it is valid (still single-use: the first approval spends it)."""
    order = engine.get(order_id)
    if order.state != "awaiting_approval" or order.validation not in MAIL_VALIDATIONS:
        raise InvalidTransition(order_id, order.state, "resend-approval",
                                "only an order awaiting approval by mail has an approval mail"
                                f" (validation {order.validation})")
    ca = engine.adapters.ca
    if not isinstance(ca, ResendsApproval):
        raise InvalidTransition(order_id, order.state, "resend-approval",
                                f"ca.kind {engine.config['ca']['kind']!r} mails the approver "
                                "itself: ask the CA to resend it")
    app_id = order.data.get("application_id")
    try:
        address = ca.resend_approval(app_id, order.language)
    except BadInput as exc:
        raise InvalidTransition(order_id, order.state, "resend-approval", exc.message) from None
    log.info("order %s: approval mail resent to %s by %s", order_id, address, actor)
    return address


def set_approver(engine, order_id: str, address: str, actor: str = "api") -> Order:
    """A new approver before approval, checked by the BR 3.2.2.4.4 constructed-address
    rule. Recorded in history (trigger ``change_approver``); an application the CA holds
    is withdrawn after the commit, and a new one is made by the dispatcher."""
    order = engine.get(order_id)
    if order.state not in APPROVER_STATES:
        raise InvalidTransition(order_id, order.state, "set-approver",
                                f"the approver can change only in {', '.join(APPROVER_STATES)}")
    if order.validation != "email":
        raise InvalidTransition(order_id, order.state, "set-approver", f"validation is "
                                f"{order.validation}: an approver is only set with email")
    approver = engine._approver("email", address, order.common_name, engine.now())
    old_application = order.data.get("application_id")
    new = engine._fire(order_id, "change_approver", {"approver": approver}, actor, order.version)
    if old_application and new.state != order.state:
        engine.adapters.ca.cancel(old_application, order_id=order_id)
    return new


def renew_now(engine, order_id: str, actor: str = "api") -> str:
    """Open a renewal of the order now, whatever its lifetime fraction; the new id."""
    from workflow.effects.renewal import renew
    old = engine.get(order_id)
    lifecycle = engine.lifecycle
    if not (lifecycle.state(old.state).final and old.certificate):
        raise InvalidTransition(order_id, old.state, "renew",
                                "only a finished order with a certificate is renewed")
    contract = engine.config.contracts.get(old.contract)
    if not contract or contract.get("status") != "active":
        raise ValidationError("contract", f"hosting contract {old.contract} is not active: "
                              "no renewal opens for it", old.contract)
    return renew(engine, old, actor).id


def revoke(engine, order_id: str, reason: str, actor: str = "api") -> Order:
    """Revoke the order's certificate at the CA, then record it (state ``revoked``, the
    customer told). The CA first: a revocation that failed is not recorded. Revoking at
    the CA twice is harmless, so a crash between the two is mended by running it again.
    A CA without revocation (manual) has the operator revoke by hand and record it here."""
    if reason not in REVOCATION_REASONS:
        raise ValidationError("reason", f"reason {reason!r} unknown: use one of "
                              f"{', '.join(REVOCATION_REASONS)} (RFC 5280)", reason)
    order = engine.get(order_id)
    if not engine.machine.steps.allows("revoke", order.state, "revoked"):
        raise InvalidTransition(order_id, order.state, "revoke",
                                "only an issued certificate is revoked")
    pem = engine.store.certificate_pem(order_id)
    if pem is None:
        raise InvalidTransition(order_id, order.state, "revoke", "the order has no certificate")
    ca = engine.adapters.ca
    if isinstance(ca, Revokes):
        ca.revoke(pem[0], reason)
    return engine._fire(order_id, "revoke", {"reason": reason}, actor, order.version)


def failed_notifications(engine) -> list[dict]:
    """Notifications that failed past their retries and nobody acknowledged yet."""
    return [{"id": r["id"], "order_id": r["order_id"], "template": r["param"],
             "attempts": r["attempts"], "last_error": r["last_error"], "failed_at": r["done_at"]}
            for r in engine.store.failed_notifications()]


def _notification_ids(engine, ids) -> list[int] | None:
    if ids is None:
        return None
    try:
        ids = [int(i) for i in ids]
    except (TypeError, ValueError):
        raise ValidationError("id", f"notification ids are numbers, not {ids!r}", ids) from None
    found = {r["id"] for r in engine.store.failed_notifications(ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound("failed notification", ", ".join(map(str, missing)))
    return ids


def retry_notifications(engine, ids: Iterable[int] | None = None) -> int:
    """Failed notifications (these, or all) queued again, due now; how many."""
    chosen = _notification_ids(engine, ids)
    with engine.command() as tx:
        return tx.retry_notifications(chosen, iso(engine.now()))


def ack_notifications(engine, ids: Iterable[int] | None = None) -> int:
    """Failed notifications (these, or all) acknowledged: out of ``status``; how many."""
    chosen = _notification_ids(engine, ids)
    with engine.command() as tx:
        return tx.ack_notifications(chosen, iso(engine.now()))


def summary(engine, hours: float = 48) -> dict:
    """``certflow status``, bounded: counts per state, the 20 oldest on_hold orders, the
    20 nearest deadlines within ``hours``, failed notifications and effects."""
    lifecycle = engine.lifecycle
    s = engine.store.bounded_summary(lifecycle.hold_state,
                                     iso(engine.now() + timedelta(hours=hours)))
    states = {name: s["counts"].get(name, 0) for name in lifecycle.state_names
              if name != lifecycle.initial}
    return {"states": states,
            "on_hold": s["on_hold"], "on_hold_count": s["on_hold_count"],
            "deadlines_48h": s["deadlines"], "deadlines_48h_count": s["deadlines_count"],
            "failed_notifications": s["failed_notifications"],
            "failed_effects": s["failed_effects"], "failed_effects_count": s["failed_effects_count"],
            "pending_effects": s["pending_effects"]}
