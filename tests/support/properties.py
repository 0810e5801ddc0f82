"""Hypothesis settings and strategies shared by tests/unit/test_properties_*.py.

Profiles (``HYPOTHESIS_PROFILE``): ``default`` runs a few examples per property inside
``make test``; ``fuzz`` (``make fuzz``) runs 10,000 per property. A workspace is made
once per test and reused by every example (what one example writes, the next sees), so
the suppressed health check is the function-scoped fixture one.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("default", max_examples=12, **_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "10000")), **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: text an attacker or a typo would put in a field
HOSTILE = ("", " ", "-", "--cn", "../../../tmp/x", "/abs/path", "a\r\nBcc: x@example.jp", "\x00",
           "x" * 300, "ｗｗｗ．ｅｘａｍｐｌｅ．ｊｐ", "*.example.jp", "127.0.0.1", "[::1]",
           "example", "www.example.local", "xn--", "xn--zz.jp", "a..b.jp", "-a.jp", "ä.jp",
           "www.例え.jp", "'; DROP TABLE orders; --", "{{7*7}}", "${jndi:x}", "%s%n", "\u202e",
           "é" * 70, "0", "-1", "1e999", "NaN", "true", "null", "[]", "{}")


def hostile_text(valid: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Mostly plausible values, with hostile literals and arbitrary text mixed in."""
    parts = [st.sampled_from(HOSTILE), st.text(max_size=80),
             st.text(alphabet=st.characters(codec="ascii"), max_size=30)]
    if valid:
        parts.insert(0, st.sampled_from(valid))
    return st.one_of(*parts)


def json_values(max_leaves: int = 8) -> st.SearchStrategy:
    """Any JSON value, numbers of every size included."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2 ** 62),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
        max_leaves=max_leaves)
