"""A loopback WHOIS server (RFC 3912), the recorded WHOIS/RDAP answers it serves, and a
contact finder made from settings as the wiring makes it."""
from __future__ import annotations

import json
import socketserver
import threading
from pathlib import Path

import pytest

from adapters.contacts.finder import from_settings

CONTACTS = Path(__file__).parent / "data" / "contacts"


def contact_finder(whois=None, rdap=None):
    return from_settings({"whois": whois, "rdap": rdap, "timeout": 10.0, "ca_bundle": None})


def recorded(name: str, **fill: str) -> str:
    """A recorded WHOIS/RDAP answer from support/data/contacts, ``{key}`` filled in."""
    text = (CONTACTS / name).read_text(encoding="utf-8")
    for key, value in fill.items():
        text = text.replace("{" + key + "}", value)
    return text


def rdap_route(domain: str, answer_file: str) -> tuple[str, tuple[int, str, bytes]]:
    """The LoopbackHTTP route an RDAP server at ``<base_url>/rdap`` answers for ``domain``."""
    body = json.dumps(json.loads(recorded(answer_file))).encode()
    return f"/rdap/domain/{domain}", (200, "application/rdap+json", body)


class WhoisServer:
    """RFC 3912 on 127.0.0.1: ``answers`` maps a query (lower case) to text or bytes."""

    def __init__(self, answers: dict[str, str | bytes], encoding: str = "utf-8") -> None:
        self.answers = {k.lower(): v for k, v in answers.items()}
        self.encoding = encoding
        self.queries: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(512).decode("ascii", "replace").strip()
                outer.queries.append(line)
                answer = outer.answers.get(line.lower(), "No match!!\n")
                data = answer if isinstance(answer, bytes) else answer.encode(outer.encoding)
                self.wfile.write(data.replace(b"\n", b"\r\n"))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def whois_servers():
    """Factory: ``whois_servers({"example.jp": text})`` starts a WhoisServer (closed after)."""
    started: list[WhoisServer] = []

    def start(answers: dict[str, str | bytes], encoding: str = "utf-8") -> WhoisServer:
        started.append(WhoisServer(answers, encoding))
        return started[-1]

    yield start
    for server in started:
        server.close()
