"""The local CA's approval page: ``GET /approve?token=T`` shows the request and changes
nothing (mail scanners fetch every link before the person does); ``POST /approve`` with
the token, the page's CSRF token and the answer approves or declines.

Declining cancels the order ("the domain administrator declined") and uses up the token.
An unknown token is 404, a used or expired one 410; neither changes anything.
"""
from __future__ import annotations

from starlette.routing import Route

from adapters.abilities import APPROVAL_TOKEN, ShowsApprovals
from adapters.base import BadInput
from workflow.errors import InvalidTransition, NotFound, StoreUnavailable
from workflow.web import i18n
from workflow.web.pages import endpoint

DECLINED = "the domain administrator declined"
ACTOR = "approver"
_GONE = {"used": ("used_title", "used_text"), "expired": ("expired_title", "expired_text"),
         "withdrawn": ("withdrawn_title", "withdrawn_text")}


def routes(web) -> list[Route]:
    engine = web.engine

    def ca() -> ShowsApprovals | None:
        found = engine.adapters.ca
        return found if isinstance(found, ShowsApprovals) else None

    def find(token: str):
        """(request, order) of a well-formed token, or (None, None)."""
        authority = ca()
        if authority is None or not APPROVAL_TOKEN.fullmatch(f"?token={token}"):
            return None, None
        request = authority.approval(token)
        if request is None:
            return None, None
        try:
            return request, engine.get(request.order_id)
        except NotFound:
            return None, None

    def refusal(lang: str, request):
        if request is None:
            return web.message(lang, 404, t(lang, "unknown_title"), t(lang, "unknown_text"))
        title, text = _GONE[request.status]
        return web.message(lang, 410, t(lang, title), t(lang, text))

    def show(http, form):
        token = http.query_params.get("token", "")
        request, order = find(token)
        lang = i18n.choose(http.query_params.get("lang"), order.language if order else None)
        if request is None or request.status != "pending":
            return refusal(lang, request)
        return web.render("approval.html", lang, names=request.names,
                          organization=order.organization, deadline=order.deadline_at
                          or request.expires_at, token=token,
                          csrf=web.signer.approval_csrf(token))

    def answer(http, form):
        token = form.get("token", "")
        request, order = find(token)
        lang = i18n.choose(form.get("lang"), order.language if order else None)
        if not web.signer.same(form.get("csrf"), web.signer.approval_csrf(token)):
            return web.message(lang, 403, t(lang, "refused"), t(lang, "bad_form"))
        if request is None or request.status != "pending":
            return refusal(lang, request)
        if form.get("answer") == "approve":
            try:
                application_id = ca().approve(token)
            except BadInput:
                return refusal(lang, _used(request))
            try:
                engine.poll_now(application_id)
            except StoreUnavailable:  # recorded at the CA: the daemon's next poll finds it
                pass
            return web.message(lang, 200, t(lang, "approved_title"), t(lang, "approved_text"))
        if form.get("answer") == "decline":
            try:  # the order first: if it cannot be cancelled, the token stays as it was
                engine.fire(request.order_id, "cancel", actor=ACTOR, reason=DECLINED)
            except InvalidTransition:
                return refusal(lang, _used(request))
            try:
                ca().decline(token)
            except BadInput:  # the order's cancel_ca effect was first: the same outcome
                pass
            return web.message(lang, 200, t(lang, "declined_title"), t(lang, "declined_text"))
        return web.message(lang, 400, t(lang, "refused"), t(lang, "bad_form"))

    return [Route("/approve", endpoint(show), methods=["GET"]),
            Route("/approve", endpoint(answer), methods=["POST"])]


def t(lang: str, key: str) -> str:
    return i18n.translator(lang)(key)


def _used(request):
    from dataclasses import replace
    return replace(request, status="used")
