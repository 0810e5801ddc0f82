"""`certflow serve`: one Starlette application, the approval page at ``/approve`` and the
operator console under ``/ops/``. Endpoints are plain functions (Starlette runs them in
its thread pool): the engine is synchronous and may be shared by threads.

Pages, templates and the endpoint wrapper: workflow.web.pages.
"""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from workflow.errors import StoreUnavailable
from workflow.web import approval, console
from workflow.web.pages import HERE, Web
from workflow.web.security import SecurityHeaders


def create_app(engine) -> Starlette:
    web = Web(engine)
    routes = [
        Route("/", lambda request: RedirectResponse("/ops/", status_code=303)),
        *approval.routes(web),
        *console.routes(web),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={StoreUnavailable: web.unavailable})
    app.state.web = web
    return app
