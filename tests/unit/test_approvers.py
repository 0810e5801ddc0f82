"""Constructed approver addresses (BR 3.2.2.4.4) against the offline Public Suffix List."""
from __future__ import annotations

import pytest
from hypothesis import assume, given, settings, strategies as st

from adapters.contacts.approvers import (APPROVER_LOCAL_PARTS, check_approver, default_approver,
                                registrable_domain)
from adapters.base import BadInput


@pytest.mark.parametrize("name, expected", [
    ("www.example.jp", "example.jp"),
    ("www.example.co.jp", "example.co.jp"),
    ("shop.city.yokohama.jp", "city.yokohama.jp"),
    ("a.b.example.com", "example.com"),
    ("WWW.Example.JP.", "example.jp"),
    ("*.example.jp", "example.jp"),
    ("www.例え.jp", "xn--r8jz45g.jp"),
    ("user.github.io", "github.io"),  # ICANN section only: github.io is not a suffix here
])
def test_registrable_domain(name, expected):
    assert registrable_domain(name) == expected


@pytest.mark.parametrize("name", ["co.jp", "jp", "", "exa mple.jp", "192.0.2.1", "-bad-.jp"])
def test_names_without_a_registrable_domain_are_refused(name):
    with pytest.raises(BadInput) as caught:
        registrable_domain(name)
    assert caught.value.field == "common_name"


@pytest.mark.parametrize("address, common_name, expected", [
    ("webmaster@example.jp", "www.example.jp", "webmaster@example.jp"),
    ("admin@www.example.jp", "www.example.jp", "admin@www.example.jp"),
    ("Hostmaster@Example.CO.JP", "shop.example.co.jp", "hostmaster@example.co.jp"),
    ("postmaster@b.example.com", "a.b.example.com", "postmaster@b.example.com"),
    ("administrator@example.jp", "example.jp", "administrator@example.jp"),
    (" admin@example.jp ", "*.example.jp", "admin@example.jp"),
])
def test_constructed_addresses_are_accepted_lower_cased(address, common_name, expected):
    assert check_approver(address, common_name) == expected


@pytest.mark.parametrize("address, message", [
    ("info@example.jp", "approver info@example.jp refused: use admin, administrator, "
                        "webmaster, hostmaster or postmaster at www.example.jp "
                        "or a parent up to example.jp"),
    ("admin@gmail.com", "approver admin@gmail.com is not at www.example.jp or a parent domain"),
    ("x@gmail.com", "approver x@gmail.com is not at www.example.jp or a parent domain"),
    ("admin@example.com", "approver admin@example.com is not at www.example.jp "
                          "or a parent domain"),
    ("admin@jp", "approver admin@jp is not at www.example.jp or a parent domain"),
    ("admin@shop.www.example.jp", "approver admin@shop.www.example.jp is not at www.example.jp "
                                  "or a parent domain"),
    ("admin@www.example.jp.evil.test", "approver admin@www.example.jp.evil.test is not at "
                                       "www.example.jp or a parent domain"),
    ("admin+x@example.jp", "approver admin+x@example.jp refused: use admin, administrator, "
                           "webmaster, hostmaster or postmaster at www.example.jp "
                           "or a parent up to example.jp"),
    ("webmaster", "approver 'webmaster' is not an email address"),
    ("web master@example.jp", "approver 'web master@example.jp' is not an email address"),
])
def test_other_addresses_are_refused_naming_the_field(address, message):
    with pytest.raises(BadInput) as caught:
        check_approver(address, "www.example.jp")

    assert caught.value.field == "approver"
    assert caught.value.message == message


def test_parent_above_the_registrable_domain_is_refused():
    with pytest.raises(BadInput) as caught:
        check_approver("admin@co.jp", "www.example.co.jp")
    assert caught.value.field == "approver"


def test_default_approver_is_admin_at_the_registrable_domain():
    assert default_approver("www.shop.example.co.jp") == "admin@example.co.jp"
    assert default_approver("www.example.jp") == "admin@example.jp"


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_suffix = st.sampled_from(["jp", "co.jp", "tokyo.jp", "com", "org.uk", "xn--1lqs71d"])


@settings(max_examples=300, deadline=None)
@given(labels=st.lists(_label, min_size=1, max_size=4), suffix=_suffix,
       local=st.sampled_from(APPROVER_LOCAL_PARTS + ("info", "root", "ADMIN", "Webmaster")),
       cut=st.integers(min_value=0, max_value=6),
       stranger=st.lists(_label, min_size=0, max_size=2))
def test_accepted_approvers_are_at_the_name_or_a_parent_down_to_the_registrable_domain(
        labels, suffix, local, cut, stranger):
    common_name = ".".join(labels) + "." + suffix
    try:
        floor = registrable_domain(common_name)
    except BadInput:
        assume(False)
    # candidate domains: the name, its parents (some too short), and unrelated names
    parts = common_name.split(".")
    candidate = ".".join(stranger + parts[min(cut, len(parts) - 1):])
    try:
        accepted = check_approver(f"{local}@{candidate}", common_name)
    except BadInput as refused:
        assert refused.field == "approver"
        return
    local_part, domain = accepted.split("@")
    assert local_part in APPROVER_LOCAL_PARTS
    assert common_name == domain or common_name.endswith("." + domain)
    assert domain == floor or domain.endswith("." + floor)
