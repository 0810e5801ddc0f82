"""The one loopback HTTP server of the tests: ``http.server`` on 127.0.0.1, a free port.

``routes`` maps a path (query string removed) to an answer; a path not routed is
served from the document root of the request's Host name in ``sites`` (name-based
virtual hosts) or else from ``docroot``, when set; else it is answered 404. An answer is
``(status, headers, body)``, where ``headers`` is a dict or just the content type, or a
callable taking the ``Request`` and returning such a tuple. Routes and docroot may be
changed while the server runs. Every request is recorded in ``requests``.
"""
from __future__ import annotations

import http.server
import json
import ssl
import threading
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Callable, Union
from urllib.parse import unquote, urlsplit

import pytest

Answer = tuple[int, Union[dict[str, str], str], bytes]
Route = Union[Answer, Callable[["Request"], Answer]]

NOT_FOUND: Answer = (404, "text/plain", b"not found\n")


@dataclass
class Request:
    method: str
    path: str            # without the query string, percent-decoded
    host: str            # the Host header without its port
    headers: Message     # case-insensitive, like HTTP
    body: bytes
    status: int = 0      # what the server answered


def json_answer(document: object, status: int = 200,
                content_type: str = "application/json") -> Answer:
    return status, content_type, json.dumps(document).encode()


def file_answer(root: Path | None, path: str) -> Answer:
    """The file at ``path`` under ``root`` (never outside it), else 404."""
    if root is not None:
        base = Path(root).resolve()
        target = (base / path.lstrip("/")).resolve()
        if base in target.parents and target.is_file():
            return 200, "text/plain", target.read_bytes()
    return NOT_FOUND


@dataclass
class LoopbackHTTP:
    """See the module docstring. Use as a context manager, or through the fixtures."""

    routes: dict[str, Route] = field(default_factory=dict)
    docroot: Path | None = None
    sites: dict[str, Path] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None   # a server-side context: HTTPS
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def answer(self, request: Request) -> Answer:
        route = self.routes.get(request.path)
        if route is None:
            return file_answer(self.sites.get(request.host, self.docroot), request.path)
        return route(request) if callable(route) else route

    def start(self) -> "LoopbackHTTP":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> "LoopbackHTTP":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _handler_for(server: LoopbackHTTP) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, unquote(urlsplit(self.path).path),
                              (self.headers.get("Host") or "").rsplit(":", 1)[0],
                              self.headers, self.rfile.read(length) if length else b"")
            server.requests.append(request)
            request.status, headers, body = server.answer(request)
            if isinstance(headers, str):
                headers = {"Content-Type": headers}
            self.send_response(request.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def http_server():
    """Factory: ``http_server(routes, docroot=..., tls=...)`` starts a LoopbackHTTP;
    every one is closed after the test."""
    started: list[LoopbackHTTP] = []

    def start(routes: dict[str, Route] | None = None, **options) -> LoopbackHTTP:
        started.append(LoopbackHTTP(dict(routes or {}), **options).start())
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def web_server(http_server) -> LoopbackHTTP:
    """A LoopbackHTTP answering 404 to everything until the test adds routes or a docroot."""
    return http_server()
