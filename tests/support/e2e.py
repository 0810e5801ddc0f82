"""Loopback servers for end-to-end CLI tests: a WHOIS server (RFC 3912), and a small HTTP
server that answers fixed routes or serves a directory (RDAP answers, a customer's web
server behind the local CA's ``connect_to``).

Import the fixtures into a test module: ``from fixtures_e2e import *``.
"""
from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.whois import WhoisServer  # noqa: F401  (re-exported for the e2e tests)

__all__ = ["CONTACTS", "recorded", "rdap_route", "WhoisServer", "WebServer", "whois_server",
           "web_server"]

CONTACTS = Path(__file__).parent / "data" / "contacts"


def recorded(name: str) -> str:
    """A recorded WHOIS/RDAP answer from tests/data/contacts."""
    return (CONTACTS / name).read_text(encoding="utf-8")


@dataclass
class Hit:
    path: str
    host: str
    status: int


@dataclass
class WebServer:
    """HTTP on 127.0.0.1. ``routes`` maps a path to ``(status, content type, body)``;
    other paths are served from ``docroot`` when set, else 404. Both may be changed
    while it runs. Every GET is recorded in ``hits``."""

    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    docroot: Path | None = None
    hits: list[Hit] = field(default_factory=list)
    address: str = ""

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path in self.routes:
            return self.routes[path]
        if self.docroot is not None:
            root = self.docroot.resolve()
            target = (root / path.lstrip("/")).resolve()
            if root in target.parents and target.is_file():
                return 200, "text/plain", target.read_bytes()
        return 404, "text/plain", b"not found\n"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"


def _start_web(web: WebServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            status, ctype, body = web.answer(path)
            web.hits.append(Hit(path, self.headers.get("Host", ""), status))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    web.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


def rdap_route(domain: str, answer_file: str) -> tuple[str, tuple[int, str, bytes]]:
    """The route an RDAP server with base URL ``<base_url>/rdap`` answers for ``domain``."""
    body = json.dumps(json.loads(recorded(answer_file))).encode()
    return f"/rdap/domain/{domain}", (200, "application/rdap+json", body)



@pytest.fixture
def whois_server():
    """Factory: ``whois_server({"example.jp": text})`` starts a WhoisServer (closed after)."""
    started: list[WhoisServer] = []

    def start(answers: dict[str, str], encoding: str = "utf-8") -> WhoisServer:
        started.append(WhoisServer(answers, encoding))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def web_server():
    """A WebServer answering 404 to everything until the test adds routes or a docroot."""
    web = WebServer()
    server, thread = _start_web(web)
    yield web
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
