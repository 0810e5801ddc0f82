"""The ACME CA adapter without an ACME server: a CA address where nothing listens is a
transient error."""
from __future__ import annotations

import socket

import pytest

from adapters.ca.acme import AcmeCA
from adapters.base import TransientError
from support.acme_parts import Vault, application, clock, make_csr


# --- failures -------------------------------------------------------------------------


def test_an_unreachable_ca_is_a_transient_error(tmp_path):
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        ca = AcmeCA(f"https://127.0.0.1:{port}/dir", str(tmp_path / "acme"), Vault().seal,
                    Vault().unseal, clock, timeout=5)
        names = ("down.example.com",)
        _, csr = make_csr(names)
        with pytest.raises(TransientError) as failure:
            ca.submit(application(names, csr, "down-1"))
    assert failure.value.action == "directory"
