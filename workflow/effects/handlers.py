"""What each effect kind does. A handler runs outside any transaction, talks to the
adapters with the row's idempotency key, and returns an Outcome (a trigger to fire),
a Later (look again), or None (done, nothing to fire)."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from adapters.base import (Application, Bundle, Challenge, DistinguishedName, Issued, Notice,
                           PermanentError, Refused, Target)
from states.policy import requested_lifetime
from workflow.clock import parse_iso
from workflow.effects.dispatcher import Later, Outcome
from workflow.intake import registrable_domain
from workflow.model import Order

Handler = Callable[..., "Outcome | Later | None"]


def webroot_for(engine, order: Order) -> str | None:
    contract = engine.config.contracts.get(order.contract) or {}
    return contract.get("webroot") or engine.config["validation"]["webroot"]


def application(engine, order: Order, key: str) -> Application:
    now = engine.now()
    deadline = parse_iso(order.deadline_at) or now + timedelta(days=10)
    return Application(
        order_id=order.id, idempotency_key=key, common_name=order.common_name,
        names=order.names, csr_pem=order.csr or "", validation=order.validation,
        approver=order.approver, deadline_at=deadline, language=order.language,
        not_after=now + requested_lifetime(now), webroot=webroot_for(engine, order))


def notice_context(engine, order: Order, **extra) -> dict:
    cert = order.certificate
    return {
        "order_id": order.id, "common_name": order.common_name, "names": list(order.names),
        "plan": order.plan, "contract": order.contract, "validation": order.validation,
        "approver": order.approver, "deadline_at": parse_iso(order.deadline_at),
        "reason": order.reason, "renewal_of": order.renewal_of, "url": None, "expires_at": None,
        "certificate": None if cert is None else {
            "serial": cert.serial, "not_before": cert.not_before, "not_after": cert.not_after,
            "sha256": cert.sha256},
        **extra,
    }


def send(engine, order: Order, template: str, key: str, to: str | None = None,
         attachments=(), **extra) -> None:
    engine.adapters.notifier.send(Notice(
        template=template, to=to or order.email, language=order.language,
        context=notice_context(engine, order, **extra), idempotency_key=key,
        attachments=tuple(attachments)))


# --- handlers -----------------------------------------------------------------------


def notify(engine, job: dict, order: Order):
    template, _, recipient = job["param"].partition("@")
    to = None
    if template == "on_hold" or recipient == "operator":
        to = engine.config["notify"]["operator"]
    extra = {}
    queued_in = engine.lifecycle.state(job["state"]) if job["state"] in engine.lifecycle.state_names else None
    if queued_in and queued_in.deadline and order.state != job["state"]:
        # a retry after the order moved on still tells the deadline of the state that queued it
        at = engine.store.conn.execute("SELECT at FROM events WHERE order_id = ? AND seq = ?",
                                       (order.id, job["seq"])).fetchone()
        if at:
            extra["deadline_at"] = parse_iso(at[0]) + queued_in.deadline[0]
    send(engine, order, template, job["idem_key"], to=to, **extra)
    if template == "approval_reminder" and order.approver and order.approver != order.email:
        send(engine, order, template, job["idem_key"] + ":approver", to=order.approver, **extra)
    return None


def make_csr(engine, job: dict, order: Order):
    """Key (made once per order, sealed at rest) and a SHA-256 CSR with the order's DN."""
    a = engine.adapters
    key_pem = engine.keys.private_key(order, create=True)
    dn = DistinguishedName(order.common_name, order.organization, order.locality,
                           order.prefecture, order.country, order.unit)
    return Outcome("submit", {"csr": a.keys.make_csr(key_pem, dn, order.names)})


def request_csr(engine, job: dict, order: Order):
    send(engine, order, "csr_request", job["idem_key"])
    return Outcome("request_csr")


def submit_ca(engine, job: dict, order: Order):
    a = engine.adapters
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
    app = application(engine, order, job["idem_key"])
    submission = a.ca.submit(app)
    webroot = app.webroot
    for challenge in submission.challenges:
        a.validator.place(challenge, webroot)
    return Outcome("ca_accept", {
        "application_id": submission.application_id,
        # a dns record's value is kept (orders.data only, never events or exports) so that
        # cleanup can tell the hook which TXT record to remove
        "challenges": [{"kind": c.kind, "domain": c.domain, "name": c.name,
                        **({"content": c.content} if c.kind == "dns" else {})}
                       for c in submission.challenges],
        "approver": submission.approver or approver,
    })


def poll_ca(engine, job: dict, order: Order):
    a = engine.adapters
    app_id = order.data.get("application_id")
    if not app_id:
        raise PermanentError(f"order {order.id} has no CA application to poll")
    result = a.ca.poll(app_id, application(engine, order, job["idem_key"]))
    if not isinstance(result, Issued):
        poll = engine.config["ca"]["poll_seconds"]
        seconds = poll if engine.config["ca"]["kind"] == "local" else max(result.retry_after, 1.0)
        return Later(seconds, result.detail)
    data = engine.verified_certificate(order.id, {"certificate": result.certificate_pem,
                                                  "chain": result.chain_pem})
    return Outcome("issue", data)


def install(engine, job: dict, order: Order):
    a = engine.adapters
    cert = _certificate(engine, order, "install")
    key_pem = engine.keys.private_key(order, create=False)
    contract = engine.config.contracts[order.contract]
    targets = [Target(name=t.get("name") or t["path"].rstrip("/").rsplit("/", 1)[-1], path=t["path"],
                      reload=t.get("reload"), verify=t.get("verify")) for t in contract["targets"]]
    a.installer.install(Bundle(order.common_name, cert["cert_pem"], cert["chain_pem"], key_pem,
                               job["idem_key"]), targets)
    return Outcome("install", {"servers": [t.name for t in targets]})


def deliver(engine, job: dict, order: Order):
    a = engine.adapters
    cert = _certificate(engine, order, "deliver")
    send(engine, order, "delivered", job["idem_key"],
         attachments=a.delivery_attachments(cert["cert_pem"], cert["chain_pem"], order.common_name))
    return Outcome("deliver")


def cleanup_validation(engine, job: dict, order: Order):
    a = engine.adapters
    webroot = webroot_for(engine, order)
    for c in order.data.get("challenges") or ():
        a.validator.remove(Challenge(c["kind"], c["domain"], c["name"], c.get("content", "")),
                           webroot)
    return None


def cancel_ca(engine, job: dict, order: Order):
    app_id = order.data.get("application_id")
    if app_id:  # the CA cancels it only if it recorded it for this order
        engine.adapters.ca.cancel(app_id, order_id=order.id)
    return None


def _certificate(engine, order: Order, purpose: str):
    cert = engine.store.conn.execute("SELECT cert_pem, chain_pem FROM certificates WHERE order_id = ?",
                                     (order.id,)).fetchone()
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
