"""Guards: named pure functions over a GuardContext.

Each returns None when the move is allowed, else the refusal reason an operator or
customer reads. ``transitions`` conditions are built from them by the engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from states.lifecycle import APPLICATION_ONLY


@dataclass(frozen=True)
class GuardContext:
    order: Mapping[str, Any]
    contract: Mapping[str, Any] | None
    now: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    dest: str = ""


def application_only(order: Mapping[str, Any], contract: Mapping[str, Any] | None) -> bool:
    """EX-CLOUD without a supported Plesk: the customer makes the CSR and installs."""
    return order.get("plan") in APPLICATION_ONLY and not (contract or {}).get("plesk", False)


def _contract_active(ctx: GuardContext) -> str | None:
    if ctx.contract is None:
        return f"hosting contract {ctx.order.get('contract')!r} not found"
    status = ctx.contract.get("status", "active")
    if status != "active":
        return f"hosting contract {ctx.order.get('contract')} is not active (status {status})"
    return None


def _flex_has_fixed_ip(ctx: GuardContext) -> str | None:
    if ctx.order.get("plan") == "flex" and not (ctx.contract or {}).get("fixed_ip"):
        return f"FLEX plan contract {ctx.order.get('contract')} has no fixed IP address"
    return None


def _full_service(ctx: GuardContext) -> str | None:
    if application_only(ctx.order, ctx.contract):
        return "application-only plan (EX-CLOUD without Plesk): the customer installs"
    return None


def _application_only(ctx: GuardContext) -> str | None:
    if not application_only(ctx.order, ctx.contract):
        return "full-service plan: the provider installs"
    return None


def _has_csr(ctx: GuardContext) -> str | None:
    return None if (ctx.data.get("csr") or ctx.order.get("csr")) else "no CSR given"


def _has_certificate(ctx: GuardContext) -> str | None:
    return None if ctx.data.get("certificate") else "no certificate given"


def _held_from_here(ctx: GuardContext) -> str | None:
    held = ctx.order.get("held_from")
    return None if held == ctx.dest else f"order was held from {held}, not {ctx.dest}"


def _mail_validation(ctx: GuardContext) -> str | None:
    if ctx.order.get("validation") in ("email", "email-whois"):
        return None
    return "validation is not by approval mail"


def _approver_given(ctx: GuardContext) -> str | None:
    """A new approver is only for mail validation with a constructed address (BR
    3.2.2.4.4): ``email``; with ``email-whois`` the approver comes from WHOIS/RDAP."""
    if ctx.order.get("validation") != "email":
        return f"validation is {ctx.order.get('validation')}: an approver is only set with email"
    return None if ctx.data.get("approver") else "no approver given"


GUARDS: Mapping[str, Callable[[GuardContext], str | None]] = {
    "contract_active": _contract_active,
    "flex_has_fixed_ip": _flex_has_fixed_ip,
    "full_service": _full_service,
    "application_only": _application_only,
    "has_csr": _has_csr,
    "has_certificate": _has_certificate,
    "held_from_here": _held_from_here,
    "mail_validation": _mail_validation,
    "mail_validation_given": _approver_given,
}

