"""Publishing validation challenges checked over real loopback HTTP: webroot files served
with a Host header, like a CA behind ``connect_to``."""
from __future__ import annotations

import stat

import pytest

from adapters.validation.webroot import WebrootValidator
from support.validation import fetch_challenge, http_challenge, tree


# --- an HTTP server with name-based virtual hosts --------------------------------------


@pytest.fixture
def site(tmp_path, http_server):
    """A web server for www.example.jp whose document root is ``tmp_path/site``."""
    root = tmp_path / "site"
    root.mkdir()
    return root, http_server(sites={"www.example.jp": root})


# --- webroot files ---------------------------------------------------------------------


def test_placed_file_is_served_then_gone_after_removal(site):
    root, server = site
    challenge = http_challenge()
    validator = WebrootValidator(default_webroot=None)

    assert fetch_challenge("www.example.jp", challenge.name, server.address, 10) is None

    validator.place(challenge, str(root))
    placed = root / challenge.name
    assert placed.read_text() == challenge.content
    assert stat.S_IMODE(placed.stat().st_mode) == 0o644
    assert fetch_challenge("www.example.jp", challenge.name, server.address, 10) \
        == challenge.content
    assert (server.requests[-1].host, server.requests[-1].path) == ("www.example.jp", "/" + challenge.name)

    validator.remove(challenge, str(root))
    assert not placed.exists()
    assert [p for p in tree(root) if p.endswith(".tmp")] == []
    assert fetch_challenge("www.example.jp", challenge.name, server.address, 10) is None


def test_fetch_sends_the_domain_as_host_header(site):
    root, server = site
    challenge = http_challenge()
    WebrootValidator(str(root)).place(challenge, None)

    # same server and path, another virtual host: not this site's file
    assert fetch_challenge("other.example.jp", challenge.name, server.address, 10) is None
    assert server.requests[-1].host == "other.example.jp"
