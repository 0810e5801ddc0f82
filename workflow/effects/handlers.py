"""What each effect kind does. A handler gets an EffectContext (the order, its outbox
row, the adapters, the clock), runs outside any transaction, talks to the adapters with
the row's idempotency key, and returns an Outcome (a trigger to fire), a Later (look
again), or None (done, nothing to fire)."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from adapters.base import (Application, Bundle, Challenge, DistinguishedName, Issued, Notice,
                           PermanentError, Refused)
from adapters.common.servers import install_targets
from states.guards import application_only
from states.policy import requested_lifetime
from workflow.clock import parse_iso
from workflow.effects.outcome import EffectContext, Later, Outcome
from workflow.intake import registrable_domain
from workflow.model import Order

Handler = Callable[[EffectContext], "Outcome | Later | None"]


def webroot_for(ctx: EffectContext, order: Order) -> str | None:
    contract = ctx.contracts.get(order.contract) or {}
    return contract.get("webroot") or ctx.config["validation"]["webroot"]


def customer_serves_files(ctx: EffectContext, order: Order) -> bool:
    """Application-only orders: the customer's server is not ours, so http challenges
    (validation files) are the customer's to publish, not written into our webroot."""
    return application_only({"plan": order.plan}, ctx.contracts.get(order.contract))


def application(ctx: EffectContext, order: Order, key: str) -> Application:
    now = ctx.now()
    webroot = None if customer_serves_files(ctx, order) else webroot_for(ctx, order)
    deadline = parse_iso(order.deadline_at) or now + timedelta(days=10)
    return Application(
        order_id=order.id, idempotency_key=key, common_name=order.common_name,
        names=order.names, csr_pem=order.csr or "", validation=order.validation,
        approver=order.approver, deadline_at=deadline, language=order.language,
        not_after=now + requested_lifetime(now), webroot=webroot)


def notice_context(ctx: EffectContext, order: Order, **extra) -> dict:
    cert = order.certificate
    customer = customer_serves_files(ctx, order)
    return {
        "application_only": customer,
        # what an application-only customer must serve for file validation
        "customer_files": [{"url": f"http://{c['domain']}/{c['name']}",
                            "content": c.get("content", "")}
                           for c in (order.data.get("challenges") or ())
                           if customer and c["kind"] == "http"],
        "order_id": order.id, "common_name": order.common_name, "names": list(order.names),
        "plan": order.plan, "contract": order.contract, "validation": order.validation,
        "approver": order.approver, "deadline_at": parse_iso(order.deadline_at),
        "reason": order.reason, "renewal_of": order.renewal_of, "url": None, "expires_at": None,
        "query": order.data.get("query"),  # what a needs_info mail asks for
        "certificate": None if cert is None else {
            "serial": cert.serial, "not_before": cert.not_before, "not_after": cert.not_after,
            "sha256": cert.sha256},
        **extra,
    }


def send(ctx: EffectContext, order: Order, template: str, key: str, to: str | None = None,
         attachments=(), **extra) -> None:
    ctx.adapters.notifier.send(Notice(
        template=template, to=to or order.email, language=order.language,
        context=notice_context(ctx, order, **extra), idempotency_key=key,
        attachments=tuple(attachments)))


# --- handlers -----------------------------------------------------------------------


def notify(ctx: EffectContext):
    job, order, lifecycle = ctx.job, ctx.order, ctx.lifecycle
    template, _, recipient = job["param"].partition("@")
    to = None
    if template == "on_hold" or recipient == "operator":
        to = ctx.config["notify"]["operator"]
    extra = {}
    queued_in = lifecycle.state(job["state"]) if job["state"] in lifecycle.state_names else None
    if queued_in and queued_in.deadline and order.state != job["state"]:
        # a retry after the order moved on still tells the deadline of the state that queued it
        at = ctx.records.event_time(order.id, job["seq"])
        if at:
            extra["deadline_at"] = parse_iso(at) + queued_in.deadline.after
    send(ctx, order, template, job["idem_key"], to=to, **extra)
    if template == "approval_reminder" and order.approver and order.approver != order.email:
        send(ctx, order, template, job["idem_key"] + ":approver", to=order.approver, **extra)
    return None


def make_csr(ctx: EffectContext):
    """Key (made once per order, sealed at rest) and a SHA-256 CSR with the order's DN."""
    a, order = ctx.adapters, ctx.order
    key_pem = ctx.keys.private_key(order, create=True)
    return Outcome("submit", {"csr": a.keys.make_csr(key_pem, _dn(order), order.names)})


def _dn(order: Order) -> DistinguishedName:
    return DistinguishedName(order.common_name, order.organization, order.locality,
                             order.prefecture, order.country, order.unit)


def request_csr(ctx: EffectContext):
    a = ctx.adapters
    command = a.keys.csr_command(ctx.order.names, _dn(ctx.order),
                                 with_sans=not a.ca.names_from_application)
    send(ctx, ctx.order, "csr_request", ctx.job["idem_key"], csr_command=command)
    return Outcome("request_csr")


def submit_ca(ctx: EffectContext):
    a, order = ctx.adapters, ctx.order
    approver = order.approver
    if order.validation == "email-whois":
        if a.contacts is None:
            raise PermanentError("validation email-whois needs [contacts] whois or rdap in config")
        domain = registrable_domain(order.common_name) or order.common_name
        contact = a.contacts.lookup(domain)
        if contact.privacy:
            raise Refused(f"domain administrator contact of {domain} is hidden by a privacy/proxy "
                          f"service ({contact.privacy}); the approval mail cannot be sent")
        if not contact.email:
            raise Refused(f"no domain administrator address found for {domain}")
        approver = contact.email
        order = _with(order, approver=approver)
    app = application(ctx, order, ctx.job["idem_key"])
    submission = a.ca.submit(app)
    customer = customer_serves_files(ctx, order)
    for challenge in submission.challenges:
        if not (customer and challenge.kind == "http"):
            a.validator.place(challenge, app.webroot)
    return Outcome("ca_accept", {
        "application_id": submission.application_id,
        # a dns record's value is kept (orders.data only, never events or exports) so that
        # cleanup can tell the hook which TXT record to remove; a file the customer must
        # serve is kept so that the mail can tell its content
        "challenges": [{"kind": c.kind, "domain": c.domain, "name": c.name,
                        **({"content": c.content} if c.kind == "dns" or customer else {})}
                       for c in submission.challenges],
        "approver": submission.approver or approver,
    })


def poll_ca(ctx: EffectContext):
    a, order = ctx.adapters, ctx.order
    app_id = order.data.get("application_id")
    if not app_id:
        raise PermanentError(f"order {order.id} has no CA application to poll")
    result = a.ca.poll(app_id, application(ctx, order, ctx.job["idem_key"]))
    if not isinstance(result, Issued):
        # the CA says when to ask again (the local CA: [ca] poll_seconds; ACME: Retry-After,
        # else [ca] step_seconds); a floor keeps a CA answering 0 from spinning a worker
        return Later(max(result.retry_after, 0.1), result.detail)
    data = ctx.verify(order.id, {"certificate": result.certificate_pem,
                                                  "chain": result.chain_pem})
    return Outcome("issue", data)


def install(ctx: EffectContext):
    a, order = ctx.adapters, ctx.order
    cert_pem, chain_pem = _certificate(ctx, order, "install")
    key_pem = ctx.keys.private_key(order, create=False)
    contract = ctx.contracts.get(order.contract)
    if contract is None:
        raise PermanentError(f"contract {order.contract} of order {order.id} is no longer known: "
                             "put it back (or its servers) to install", value=order.contract)
    targets = install_targets(contract["targets"])
    a.installer.install(Bundle(order.common_name, cert_pem, chain_pem, key_pem,
                               ctx.job["idem_key"]), targets)
    return Outcome("install", {"servers": [t.name for t in targets]})


def deliver(ctx: EffectContext):
    a, order = ctx.adapters, ctx.order
    cert_pem, chain_pem = _certificate(ctx, order, "deliver")
    send(ctx, order, "delivered", ctx.job["idem_key"],
         attachments=a.delivery_attachments(cert_pem, chain_pem, order.common_name))
    return Outcome("deliver")


def cleanup_validation(ctx: EffectContext):
    a, order = ctx.adapters, ctx.order
    webroot = webroot_for(ctx, order)
    customer = customer_serves_files(ctx, order)
    for c in order.data.get("challenges") or ():
        if customer and c["kind"] == "http":
            continue  # on the customer's server, never in our webroot
        a.validator.remove(Challenge(c["kind"], c["domain"], c["name"], c.get("content", "")),
                           webroot)
    return None


def cancel_ca(ctx: EffectContext):
    app_id = ctx.order.data.get("application_id")
    if app_id:  # the CA cancels it only if it recorded it for this order
        ctx.adapters.ca.cancel(app_id, order_id=ctx.order.id)
    return None


def _certificate(ctx: EffectContext, order: Order, purpose: str) -> tuple[str, str]:
    cert = ctx.records.certificate_pem(order.id)
    if cert is None:
        raise PermanentError(f"order {order.id} has no certificate to {purpose}")
    return cert


def _with(order: Order, **changes) -> Order:
    from dataclasses import replace
    return replace(order, **changes)


HANDLERS: dict[str, Handler] = {
    "notify": notify, "make_csr": make_csr, "request_csr": request_csr, "submit_ca": submit_ca,
    "poll_ca": poll_ca, "install": install, "deliver": deliver,
    "cleanup_validation": cleanup_validation, "cancel_ca": cancel_ca,
}
