"""The embedded CA's file validation over real loopback HTTP: issuance once the web server
serves the file, a pending application while nothing answers."""
from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import Issued, Pending
from adapters.crypto.keys import KeyVault
from adapters.ca.local import LocalCA
from support.ca import NAMES, application, assert_verifies, place
from support.webserver import LoopbackHTTP


# the local CA's certificates are checked by openssl against the system clock
pytestmark = pytest.mark.wall_clock


# --- file validation ----------------------------------------------------------------


def test_file_validation_over_loopback_http_issues_once_the_file_is_served(
        tmp_path, clock, rsa_csr):
    webroot = tmp_path / "www"
    webroot.mkdir()
    with LoopbackHTTP(docroot=webroot) as web:
        ca = LocalCA(str(tmp_path / "ca"), KeyVault(KeyVault.new_master_key()), clock.now,
                     connect_to=web.address)
        app = application(rsa_csr)
        submission = ca.submit(app)
        [challenge] = submission.challenges
        assert (challenge.kind, challenge.domain) == ("http", "www.example.jp")
        assert challenge.name.startswith(".well-known/pki-validation/")
        assert challenge.name.endswith(".txt") and len(Path(challenge.name).stem) >= 16
        assert len(challenge.content) >= 22

        pending = ca.poll(submission.application_id, app)
        assert isinstance(pending, Pending) and "404" in pending.detail
        place(webroot, challenge, content="something else")
        assert "does not hold" in ca.poll(submission.application_id, app).detail

        place(webroot, challenge)
        issued = ca.poll(submission.application_id, app)
        assert isinstance(issued, Issued)
        assert {request.host for request in web.requests} == {"www.example.jp"}
    assert assert_verifies(ca, issued, rsa_csr, clock).names == NAMES
    assert ca.submit(app) == submission  # a retry gets the same challenge


def test_unreachable_web_server_keeps_the_application_pending(tmp_path, clock, rsa_csr):
    with LoopbackHTTP(docroot=tmp_path) as web:
        address = web.address  # a port that is closed once the server stops
    ca = LocalCA(str(tmp_path / "ca"), KeyVault(KeyVault.new_master_key()), clock.now,
                 connect_to=address, http_timeout=2)
    app = application(rsa_csr)
    pending = ca.poll(ca.submit(app).application_id, app)
    assert isinstance(pending, Pending) and "cannot fetch http://www.example.jp/" in pending.detail
