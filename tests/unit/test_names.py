"""One helper each for host names, registrable domains and e-mail addresses (issue 15)."""
from __future__ import annotations

import pytest

from adapters.common import names
from adapters.contacts import approvers
from workflow import intake


def test_one_registrable_domain_over_one_public_suffix_list():
    assert intake.registrable_domain is names.registrable_domain
    assert approvers.registrable_domain("WWW.Example.CO.JP.") == names.registrable_domain(
        "www.example.co.jp") == "example.co.jp"
    assert names.registrable_domain("www.example.zzzz") is None  # no default "*" rule


@pytest.mark.parametrize("text, plain, service", [
    ("www.example.jp", True, True), ("_acme-challenge.example.jp", False, True),
    ("-bad.example.jp", False, False), ("a" * 64 + ".jp", False, False),
    ("example.jp_", False, False), ("localhost", True, True),
])
def test_one_host_name_syntax(text, plain, service):
    assert names.is_host_name(text) is plain
    assert names.is_host_name(text, underscore=True) is service


@pytest.mark.parametrize("text, ok", [
    ("owner@example.jp", True), ("o.w+n-er@mail.example.co.jp", True), ("owner@example", False),
    ("owner example.jp", False), ("a@b@example.jp", False), ("x" * 250 + "@example.jp", False),
])
def test_one_email_syntax(text, ok):
    assert names.is_email(text) is ok


def test_host_normalisation_is_shared():
    assert names.normalize_host("WWW.例え.JP.") == approvers.normalize_domain("www.例え.jp") \
        == intake.normalize_host("www.例え.jp") == "www.xn--r8jz45g.jp"
    assert names.a_label("*.例え.jp") == "*.xn--r8jz45g.jp"
