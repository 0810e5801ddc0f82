"""Running the web application with uvicorn on ``[web] listen``."""
from __future__ import annotations

from adapters.base import BadInput
from adapters.common.hostport import parse_host_port
from workflow.errors import ConfigError


def listen_address(config, override: str | None = None) -> tuple[str, int]:
    value = override or config["web"]["listen"]
    try:
        return parse_host_port(value, "web.listen")
    except BadInput as exc:
        raise ConfigError("web.listen", exc.message, str(config.path)) from None


def serve(engine, listen: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM. A reverse proxy on loopback may say the request came
    over https (``X-Forwarded-Proto``); nothing else is trusted to."""
    import uvicorn
    from workflow.web.app import create_app
    host, port = listen_address(engine.config, listen)
    app = create_app(engine)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                            server_header=False)
    uvicorn.Server(config).run()
