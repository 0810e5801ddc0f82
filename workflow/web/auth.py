"""Console logins: the session cookie, the CSRF check of every POST, the throttle."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from workflow import operators
from workflow.web import i18n
from workflow.web.security import SESSION_COOKIE, SESSION_LIFETIME, Session, safe_next

LANG_COOKIE = "certflow_lang"


class Auth:
    def __init__(self, web) -> None:
        self.web = web
        self.engine = web.engine

    def session(self, request: Request) -> Session | None:
        return self.web.signer.load(request.cookies.get(SESSION_COOKIE), self.engine.now())

    def operator(self, request: Request) -> Session | None:
        """The logged-in session, if its operator still exists (removal logs out)."""
        s = self.session(request)
        if s and s.operator and operators.exists(self.engine, s.operator):
            return s
        return None

    def set_session(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(SESSION_COOKIE, self.web.signer.dump(session),
                            max_age=int(SESSION_LIFETIME.total_seconds()), path="/",
                            httponly=True, samesite="strict", secure=self.web.secure(request))

    def lang(self, request: Request) -> str:
        return i18n.choose(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))

    def keep_lang(self, response: Response, request: Request) -> Response:
        asked = request.query_params.get("lang")
        if asked in i18n.LANGUAGES:
            response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, path="/",
                                httponly=True, samesite="strict", secure=self.web.secure(request))
        return response

    def csrf_ok(self, session: Session | None, form: dict) -> bool:
        return session is not None and self.web.signer.same(form.get("csrf"),
                                                            self.web.signer.csrf(session))

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ops/login?next={quote(safe_next(target), safe='/')}",
                                status_code=303)

    def login_page(self, request: Request, form: dict):
        lang = self.lang(request)
        session = self.session(request)
        if request.method == "GET":
            fresh = session or self.web.signer.new_session(None, self.engine.now())
            response = self._login_form(lang, fresh, request.query_params.get("next"))
            self.set_session(response, request, fresh)
            return self.keep_lang(response, request)
        if not self.csrf_ok(session, form):
            return self.web.message(lang, 403, self.web_t(lang, "refused"),
                                    self.web_t(lang, "forbidden"), back="/ops/login")
        name = form.get("name", "").strip()
        client = request.client.host if request.client else "?"
        keys, now = [f"name:{name}", f"client:{client}"], self.engine.now()
        wait = self.web.throttle.wait(keys, now)
        if wait:
            return self._login_form(lang, session, form.get("next"), 429,
                                    self.web_t(lang, "throttled").format(s=wait))
        if not operators.verify(self.engine, name, form.get("password", "")):
            self.web.throttle.failed(keys, now)
            return self._login_form(lang, session, form.get("next"), 401,
                                    self.web_t(lang, "login_failed"))
        self.web.throttle.succeeded(f"name:{name}")
        response = RedirectResponse(safe_next(form.get("next")), status_code=303)
        self.set_session(response, request, self.web.signer.new_session(name, now))
        return response

    def logout(self, request: Request, form: dict):
        session = self.session(request)
        if not self.csrf_ok(session, form):
            lang = self.lang(request)
            return self.web.message(lang, 403, self.web_t(lang, "refused"),
                                    self.web_t(lang, "forbidden"))
        response = RedirectResponse("/ops/login", status_code=303)
        self.set_session(response, request, self.web.signer.new_session(None, self.engine.now()))
        return response

    def _login_form(self, lang, session, target, status=200, error=None):
        return self.web.render("login.html", lang, status, csrf=self.web.signer.csrf(session),
                               next=safe_next(target), error=error)

    @staticmethod
    def web_t(lang: str, key: str) -> str:
        return i18n.translator(lang)(key)
