"""The demo's leaf certificates: valid in real time (issue 16, item 10) and clean under
pkilint's ``lint_cabf_serverauth_cert`` as to validity period and key usage."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography import x509

from support.pkilint_certs import LOCAL_CA_ONLY, demo_leaves, lint

#: the BRs do not recommend a CN in DV certificates; the provider's procedure names one
KEPT_ON_PURPOSE = frozenset({"cabf.serverauth.dv.common_name_attribute_present"})


@pytest.fixture(scope="module")
def leaves(tmp_path_factory) -> list[bytes]:
    paths = demo_leaves(tmp_path_factory.mktemp("lint") / "demo")
    assert len(paths) == 6  # four orders installed, one of them on three HA servers
    return [p.read_bytes() for p in paths]


def test_demo_leaf_certificates_are_valid_now(leaves):
    now = datetime.now(timezone.utc)
    for pem in leaves:
        cert = x509.load_pem_x509_certificate(pem)
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc, cert.not_valid_before_utc


def test_pkilint_finds_nothing_about_validity_or_key_usage(leaves):
    for pem in leaves:
        findings = lint(pem)
        assert not [f for f in findings if f.forbidden], findings
        assert {f.code for f in findings} <= LOCAL_CA_ONLY | KEPT_ON_PURPOSE, findings
