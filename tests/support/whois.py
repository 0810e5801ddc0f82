"""A loopback WHOIS server (RFC 3912) answering recorded texts, for contacts tests."""
from __future__ import annotations

import socketserver
import threading


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
