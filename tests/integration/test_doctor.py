"""`certflow doctor` against real loopback servers: an SMTP server that answers, an ACME
directory reachable or named."""
from __future__ import annotations

import pytest

from support.helpers import configure, doctor, free_port, last_line
from support.webserver import json_answer


def test_reachable_smtp_passes(workspace, smtp_server):
    configure(workspace, {"notify.kind": "smtp", "notify.host": smtp_server.host,
                          "notify.port": smtp_server.port})
    proc = doctor(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"smtp {smtp_server.host}:{smtp_server.port} answers" in proc.stdout


@pytest.fixture
def acme_directory(http_server):
    """A loopback HTTP server answering an ACME directory document."""
    server = http_server({"/dir": json_answer({"newNonce": "x", "newAccount": "x",
                                               "newOrder": "x"})})
    return server.base_url + "/dir"


def test_acme_directory_reachable_or_named(workspace, acme_directory):
    configure(workspace, {"ca.kind": "acme", "ca.directory": acme_directory})
    proc = doctor(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"ACME directory {acme_directory} answers" in proc.stdout

    gone = f"http://127.0.0.1:{free_port()}/dir"
    configure(workspace, {"ca.directory": gone})
    proc = doctor(workspace)
    assert proc.returncode == 1
    assert last_line(proc).startswith(f"doctor: ACME directory {gone} unreachable")
