"""Approver contacts without a server: refused connections and every server down are
transient, no settings means no finder, privacy markers, and any WHOIS bytes or RDAP
object parse without a crash."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from adapters.base import Refused, TransientError
from adapters.contacts.finder import (ChainFinder, RdapFinder, WhoisFinder, contact_from_rdap,
                                      decode_whois, detect_privacy, parse_whois)
from support.whois import contact_finder


# --- WHOIS: gTLD registry -> registrar referral ---------------------------------------


def test_refused_connection_is_transient_naming_the_server(closed_port):
    with pytest.raises(TransientError) as caught:
        WhoisFinder(f"127.0.0.1:{closed_port}", timeout=5).lookup("example.jp")

    assert caught.value.server == f"127.0.0.1:{closed_port}"
    assert f"127.0.0.1:{closed_port}" in caught.value.message


# --- RDAP, then WHOIS ------------------------------------------------------------------


def test_chain_with_every_server_down_is_transient(closed_port):
    finder = ChainFinder([RdapFinder(f"http://127.0.0.1:{closed_port}/rdap", timeout=5),
                          WhoisFinder(f"127.0.0.1:{closed_port}", timeout=5)])

    with pytest.raises(TransientError):
        finder.lookup("example.jp")


def test_no_contacts_configured_means_no_finder():
    assert contact_finder() is None


# --- privacy markers and parsing --------------------------------------------------------


@pytest.mark.parametrize("value", [
    "REDACTED FOR PRIVACY", "Redacted for Privacy Purposes", "Data Protected, Not Disclosed",
    "Withheld for Privacy ehf", "Privacy Protection Service INC d/b/a PrivacyProtect.org",
    "Whois Privacy Service", "Domains By Proxy, LLC", "Contact Privacy Inc. Customer 12345",
    "WhoisGuard, Inc.", "PrivacyGuardian.org llc", "Statutory proxy agent",
    "Whois情報公開代行サービス", "お名前.com 代理公開",
    "d41d8cd98f@withheldforprivacy.com",
])
def test_privacy_markers_are_recognised(value):
    reason = detect_privacy({"Registrant Organization": value})

    assert reason is not None and "Registrant Organization" in reason


@pytest.mark.parametrize("value", [
    "Example Co., Ltd.", "株式会社エグザンプル", "hostmaster@example.jp", "Hanako Sato",
    "Example Shop K.K.", None, "",
])
def test_ordinary_contacts_are_not_privacy(value):
    assert detect_privacy({"Admin Organization": value}) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_decode_and_parse_without_raising(data):
    answer = parse_whois(decode_whois(data))
    assert isinstance(answer.fields, list)


_rdap_keys = st.sampled_from(["entities", "roles", "vcardArray", "remarks", "redacted", "name",
                              "type", "title", "description", "vcard", "email", "fn"])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.sampled_from(["administrative", "registrant", "registrar", "proxy", "vcard",
                       "email", "fn", "a@example.jp", "REDACTED FOR PRIVACY"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_rdap_keys, inner, max_size=5),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_rdap_keys, _json, max_size=6))
def test_any_rdap_object_gives_a_contact_or_a_refusal(data):
    try:
        contact = contact_from_rdap(data, "example.jp", "rdap test")
    except Refused as refused:
        assert "example.jp" in refused.message
    else:
        assert contact.email or contact.privacy
