"""Intake validation: host names (LDH, IDN, PSL www rule), DN fields, plans, contracts."""
import pytest
from hypothesis import given, settings, strategies as st

from workflow.errors import ValidationError
from workflow.intake import names_for, normalize_host, validate_order
from support.helpers import ORDER

CONTRACTS = {"C-1001": {"plan": "basic"}}


@pytest.mark.parametrize("cn, names", [
    ("www.example.jp", ("www.example.jp", "example.jp")),
    ("www.example.co.jp", ("www.example.co.jp", "example.co.jp")),
    ("www.shop.example.jp", ("www.shop.example.jp",)),
    ("shop.example.jp", ("shop.example.jp",)),
    ("example.jp", ("example.jp",)),
    ("WWW.Example.COM", ("www.example.com", "example.com")),
    ("www.日本語.jp", ("www.xn--wgv71a119e.jp", "xn--wgv71a119e.jp")),
])
def test_www_rule_follows_the_public_suffix_list(cn, names):
    host = normalize_host(cn)
    assert names_for(host) == names


@pytest.mark.parametrize("bad", [
    "", "localhost", "example", "192.0.2.1", "[2001:db8::1]", "-bad.example.jp", "bad-.example.jp",
    "under_score.example.jp", "a" * 64 + ".example.jp", ".".join(["a" * 63] * 4) + ".jp",
    "exa mple.jp", "*.example.jp", "co.jp", "example.123", "ex..ample.jp",
])
def test_malformed_common_names_are_refused_naming_the_field(bad):
    with pytest.raises(ValidationError) as err:
        normalize_host(bad)
    assert err.value.field == "common_name"


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(_label, min_size=1, max_size=4))
def test_ldh_names_under_a_public_suffix_are_accepted_lowercase(labels):
    host = ".".join(labels + ["example", "jp"])
    assert normalize_host(host.upper()) == host


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_any_text_is_either_a_valid_host_or_a_clear_refusal(text):
    try:
        host = normalize_host(text)
    except ValidationError as exc:
        assert exc.field == "common_name" and "\n" not in exc.message
        return
    assert host == host.lower() and host.isascii() and len(host) <= 253
    assert all(0 < len(label) <= 63 for label in host.split("."))
    assert names_for(host)[0] == host


@pytest.mark.parametrize("field, value", [
    ("country", "JPN"), ("country", "XX"), ("plan", "gold"), ("contract", "C-404"),
    ("email", "not-an-address"), ("organization", ""), ("organization", "株式会社例"),
    ("locality", None), ("prefecture", ""), ("validation", "carrier-pigeon"), ("language", "fr"),
])
def test_each_bad_field_is_named(field, value):
    with pytest.raises(ValidationError) as err:
        validate_order({**ORDER, field: value}, CONTRACTS)
    assert err.value.field == field


def test_a_good_order_is_normalised():
    of = validate_order({**ORDER, "country": "jp", "common_name": "WWW.Example.JP"}, CONTRACTS)
    assert (of.common_name, of.sans, of.country, of.validation) == \
        ("www.example.jp", ("example.jp",), "JP", "file")
