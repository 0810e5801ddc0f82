"""The operator console under ``/ops/``: status, orders (filters, paging), one order
(timeline, pending work, certificate, actions), the on-hold queue, expiring
certificates, failed notifications (retry, acknowledge), contracts.

Every action is the engine operation the CLI uses, with the operator's name as actor;
every POST carries the session's CSRF token (403 without it); a page without a login
redirects to the login page.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from adapters.abilities import REVOCATION_REASONS
from workflow.errors import CertflowError, NotFound, StoreUnavailable
from workflow.operations import APPROVER_STATES
from workflow.web.pages import endpoint
from workflow.web.auth import Auth

PAGE_SIZE = 50
EXPIRING_DAYS = 30


#: a provider has tens of thousands: the page shows the first ones by id (the CLI lists all)
CONTRACTS_SHOWN = 500


class Console:
    def __init__(self, web) -> None:
        self.web, self.engine, self.auth = web, web.engine, Auth(web)
        self.lifecycle = self.engine.lifecycle

    # --- plumbing ------------------------------------------------------------------

    def page(self, handler):
        """A console endpoint: logged in (else to the login page), CSRF on POST (else 403)."""
        def run(request: Request, form: dict):
            session = self.auth.operator(request)
            lang = self.auth.lang(request)
            if request.method == "POST" and not self.auth.csrf_ok(session, form):
                return self.web.message(lang, 403, self.auth.web_t(lang, "refused"),
                                        self.auth.web_t(lang, "forbidden"))
            if session is None:
                return self.auth.to_login(request)
            view = View(self, request, session, lang)
            return self.auth.keep_lang(handler(view, request, form), request)
        return endpoint(run)

    # --- pages -----------------------------------------------------------------------

    def status(self, view, request, form):
        return view.render("status.html", "status", summary=self.engine.summary())

    def orders(self, view, request, form):
        q = request.query_params
        state = q.get("state") or None
        if state not in (None, *self.lifecycle.state_names):
            state = None
        days = _int(q.get("expiring"))
        found, more = self.find(state=state, contract=q.get("contract") or None,
                                cn=(q.get("q") or "").strip() or None, expiring_within=days,
                                after=q.get("after") or None)
        return view.render("orders.html", "orders", orders=found, more=more,
                           filters={"state": state or "", "contract": q.get("contract", ""),
                                    "q": q.get("q", ""), "expiring": days or ""},
                           states=self.lifecycle.state_names)

    def find(self, *, state=None, contract=None, cn=None, expiring_within=None, after=None):
        """One page of orders, by id, and whether more follow (engine.find, as the CLI's
        ``order list`` filters)."""
        states = state or (self.live_certificates() if expiring_within is not None else None)
        found = list(self.engine.find(states=states, contract=contract, cn=cn,
                                      expiring_within=expiring_within, limit=PAGE_SIZE + 1,
                                      after=after))
        return found[:PAGE_SIZE], len(found) > PAGE_SIZE

    def live_certificates(self) -> tuple[str, ...]:
        """States whose certificate is in use (not revoked, not replaced by a renewal)."""
        return tuple(s for s in self.lifecycle.certificate_states
                     if s not in ("revoked", "superseded"))

    def order(self, view, request, form, status=200, flash=None, error=None):
        order_id = request.path_params["order_id"]
        try:
            order = self.engine.get(order_id)
        except NotFound:
            return view.message(404, "not_found", order_id)
        history = self.engine.history(order_id)
        pending = self.engine.pending_effects(order_id)
        return view.render("order.html", "orders", status, order=order, history=history,
                           actions=self.actions_for(order, pending), pending=pending,
                           reasons=list(REVOCATION_REASONS), flash=flash, error=error,
                           done=request.query_params.get("done") if
                           request.query_params.get("done") in ACTIONS else None)

    def actions_for(self, order, pending) -> list[str]:
        """The actions that may apply to the order now (the engine still decides)."""
        state = self.lifecycle.state(order.state)
        possible = {t.trigger for t in self.lifecycle.transitions if t.source == order.state}
        if order.state == self.lifecycle.hold_state:
            possible.add("resume")
        if pending:
            possible.add("retry")
        if order.state == "awaiting_approval" and order.validation in ("email", "email-whois"):
            possible.add("resend_approval")
        if order.validation == "email" and order.state in APPROVER_STATES:
            possible.add("set_approver")
        if state.final and order.certificate:
            possible.add("renew")
        return [a for a in ACTIONS if a in possible]

    def act(self, view, request, form):
        order_id, action = request.path_params["order_id"], request.path_params["action"]
        if action not in ACTIONS:
            return view.message(404, "not_found", action)
        try:
            shown = ACTIONS[action](self.engine, order_id, form, view.operator) or order_id
        except NotFound:
            return view.message(404, "not_found", order_id)
        except StoreUnavailable:
            raise  # 503: try again (the application's handler)
        except CertflowError as exc:
            return self.order(view, request, form, status=409, error=exc.message or str(exc))
        return RedirectResponse(f"/ops/orders/{shown}?done={action}", status_code=303)

    def notifications(self, view, request, form):
        if request.method == "POST":
            ids = [int(i) for i in form.get("ids", "").split(",") if i.strip().isdigit()] or None
            try:
                if form.get("do") == "retry":
                    self.engine.retry_notifications(ids)
                elif form.get("do") == "ack":
                    self.engine.ack_notifications(ids)
            except NotFound as exc:
                return view.message(404, "not_found", exc.message)
            return RedirectResponse("/ops/notifications", status_code=303)
        return view.render("notifications.html", "notifications",
                           failed=self.engine.failed_notifications())

    def hold(self, view, request, form):
        return view.render("hold.html", "hold", orders=self.engine.list(self.lifecycle.hold_state))

    def expiring(self, view, request, form):
        days = _int(request.query_params.get("days")) or EXPIRING_DAYS
        found, more = self.find(expiring_within=days, after=request.query_params.get("after"))
        found.sort(key=lambda o: o.certificate.not_after)
        return view.render("expiring.html", "expiring", orders=found, more=more, days=days)

    def contracts(self, view, request, form):
        return view.render("contracts.html", "contracts",
                           contracts=self.engine.contracts.list()[:CONTRACTS_SHOWN])

    def routes(self) -> list[Route]:
        page = self.page
        return [
            Route("/ops/login", endpoint(self.auth.login_page), methods=["GET", "POST"]),
            Route("/ops/logout", endpoint(self.auth.logout), methods=["POST"]),
            Route("/ops/", page(self.status)),
            Route("/ops/orders", page(self.orders)),
            Route("/ops/orders/{order_id}", page(self.order)),
            Route("/ops/orders/{order_id}/{action}", page(self.act), methods=["POST"]),
            Route("/ops/hold", page(self.hold)),
            Route("/ops/expiring", page(self.expiring)),
            Route("/ops/contracts", page(self.contracts)),
            Route("/ops/notifications", page(self.notifications), methods=["GET", "POST"]),
            Route("/ops", lambda request: RedirectResponse("/ops/", status_code=303)),
        ]


class View:
    """One request's page context: the operator, the language, the CSRF token."""

    def __init__(self, console: Console, request: Request, session, lang: str) -> None:
        self.console, self.request, self.lang = console, request, lang
        self.operator = session.operator
        self.csrf = console.web.signer.csrf(session)

    def render(self, template: str, nav: str, status: int = 200, **context):
        return self.console.web.render(template, self.lang, status, me=self.operator,
                                       csrf=self.csrf, nav=nav, path=self.request.url.path,
                                       hold_state=self.console.lifecycle.hold_state, **context)

    def message(self, status: int, title: str, text: str):
        t = self.console.auth.web_t
        return self.console.web.message(self.lang, status, t(self.lang, title), text,
                                        back="/ops/orders")


def _fire(trigger: str, with_reason: bool = False):
    def action(engine, order_id: str, form: dict, actor: str):
        data = {"reason": form["reason"].strip()} if with_reason and \
            (form.get("reason") or "").strip() else {}
        engine.fire(order_id, trigger, actor=actor, **data)
    return action


#: console action → the engine operation its CLI command runs (`order resume|cancel|retry|
#: resend-approval|set-approver|renew|revoke`); one may return the order to show next
ACTIONS = {
    "resume": _fire("resume"),
    "retry": lambda engine, oid, form, actor: engine.retry(oid, actor=actor) and None,
    "resend_approval": lambda engine, oid, form, actor:
        engine.resend_approval(oid, actor=actor) and None,
    "set_approver": lambda engine, oid, form, actor:
        engine.set_approver(oid, form.get("address", "").strip(), actor=actor) and None,
    "renew": lambda engine, oid, form, actor: engine.renew_now(oid, actor=actor),
    "cancel": _fire("cancel", with_reason=True),
    "revoke": lambda engine, oid, form, actor:
        engine.revoke(oid, form.get("reason", ""), actor=actor) and None,
}


def _int(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if 0 <= value <= 36500 else None


def routes(web) -> list[Route]:
    return Console(web).routes()
