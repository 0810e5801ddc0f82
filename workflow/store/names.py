"""The names an order is found by (``order list --cn``): each of its DNS names in
lower case, as the A-label it carries and, for an IDN, as the U-label people type."""
from __future__ import annotations

import json

import idna


def search_names(common_name: str, sans_json: str | None) -> list[str]:
    """Distinct lower-case A- and U-label forms of the common name and every SAN."""
    found: dict[str, None] = {}
    for name in (common_name, *json.loads(sans_json or "[]")):
        a_label = (name or "").lower()
        if not a_label:
            continue
        found[a_label] = None
        if "xn--" in a_label:
            try:
                found[idna.decode(a_label)] = None
            except (idna.IDNAError, UnicodeError):
                pass  # not a valid IDN: the A-label alone finds it
    return list(found)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (``\\`` escapes LIKE's wildcards)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
