"""Property: ``certflow order place`` with any field values exits 0, 2 or 75, never a
traceback, and a refusal writes nothing (store rows and workspace files unchanged)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from support import properties as props
from support.helpers import ORDER
from support.inproc import CASE, assert_contract_exit, assert_unchanged, invoke, snapshot

FLAGS = {"common_name": "--cn", "organization": "--org", "unit": "--unit",
         "locality": "--locality", "prefecture": "--prefecture", "country": "--country",
         "plan": "--plan", "contract": "--contract", "email": "--email",
         "validation": "--validation", "approver": "--approver", "language": "--language",
         "renewal_of": "--renewal-of"}
VALID = {
    "common_name": ("www.example.jp", "shop.example.co.jp", "example.com", "www.bücher.de"),
    "organization": ("Example Corp.",), "unit": ("Web",), "locality": ("Shinjuku-ku",),
    "prefecture": ("Tokyo",), "country": ("JP", "jp", "US"),
    "plan": ("basic", "flex", "ex-cloud", "pro", "LITE"),
    "contract": ("C-1001", "C-2001", "C-2002", "C-3001", "C-9001"),
    "email": ("owner@example.jp",), "validation": ("file", "email", "email-whois", "http-01",
                                                    "dns-01"),
    "approver": ("admin@example.jp", "webmaster@example.jp", "someone@else.com"),
    "language": ("ja", "en"), "renewal_of": ("20261201-00000000",),
}
OPTIONAL = ("unit", "validation", "approver", "language", "renewal_of")


@st.composite
def place_fields(draw) -> dict:
    """A valid order with 0 to 3 fields fuzzed (hostile, arbitrary or left out)."""
    fuzzed = draw(st.sets(st.sampled_from(tuple(FLAGS)), max_size=3), label="fuzzed fields")
    fields = {}
    for key in FLAGS:
        if key in fuzzed:
            if draw(st.integers(0, 4)) > 0:  # else: left out
                fields[key] = draw(props.hostile_text(VALID[key]), label=key)
        elif key in ORDER:
            fields[key] = draw(st.sampled_from((ORDER[key],) + VALID[key]), label=key)
        elif draw(st.booleans()):
            fields[key] = draw(st.sampled_from(VALID[key]), label=key)
    return fields


@given(fields=place_fields())
def test_order_place_exits_0_2_or_75_and_a_refusal_writes_nothing(workspace, fields):
    CASE.clear()
    before = snapshot(workspace)
    args = [f"{FLAGS[k]}={v}" for k, v in fields.items()]  # "=": a value may start with "-"
    CASE["args"] = repr(args)
    res = invoke(workspace, "order", "place", *args, "--json")
    assert_contract_exit(res)
    if res.exit_code != 0:
        assert_unchanged(before, snapshot(workspace), res)
    else:
        assert snapshot(workspace)[0]["orders"] == before[0]["orders"] + 1
