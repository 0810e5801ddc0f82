"""What every page shares: the Jinja2 templates (autoescaping on: order fields are
customer input), the engine, the signer and throttle, and the endpoint wrapper."""
from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from workflow.web import i18n
from workflow.web.security import Signer, Throttle

HERE = Path(__file__).parent
_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                autoescape=True, undefined=jinja2.StrictUndefined)


class Web:
    """What the endpoints share: the engine, the signer, the login throttle."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.signer = Signer(engine.adapters.vault.derive("web session"))
        self.throttle = Throttle()
        public_url = engine.config["web"]["public_url"] or ""
        self.https = public_url.startswith("https://")

    def secure(self, request: Request) -> bool:
        return self.https or request.url.scheme == "https"

    def render(self, name: str, lang: str, status: int = 200, **context) -> HTMLResponse:
        html = _TEMPLATES.get_template(name).render(t=i18n.translator(lang), lang=lang,
                                                    **context)
        return HTMLResponse(html, status_code=status)

    def unavailable(self, request: Request, exc: Exception) -> HTMLResponse:
        """The store is busy, full or read-only (exit 75 on the CLI): 503, try again."""
        lang = i18n.choose(request.query_params.get("lang"))
        response = self.message(lang, 503, "503", i18n.translator(lang)("unavailable"))
        response.headers["retry-after"] = "5"
        return response

    def message(self, lang: str, status: int, title: str, text: str, **context) -> HTMLResponse:
        return self.render("message.html", lang, status, title=title, text=text, **context)


def endpoint(handler):
    """An endpoint from a synchronous ``handler(request, form)``: the form (POST) is read
    here, the handler runs in the thread pool."""
    async def run(request: Request):
        form = {}
        if request.method == "POST":
            async with request.form(max_files=0, max_fields=20) as data:
                form = {k: v for k, v in data.items() if isinstance(v, str)}
        return await run_in_threadpool(handler, request, form)
    return run


def when(stamp) -> str:
    """An ISO 8601 time (text or datetime) as people read it: ``2026-12-11 09:30 UTC``."""
    if not stamp:
        return ""
    from workflow.clock import parse_iso
    moment = parse_iso(stamp) if isinstance(stamp, str) else stamp
    return f"{moment:%Y-%m-%d %H:%M} UTC"


_TEMPLATES.filters["when"] = when
