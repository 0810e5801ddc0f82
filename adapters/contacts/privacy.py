"""Recognising WHOIS/RDAP contacts hidden by a privacy or proxy service.

The seed procedure refuses orders whose administrator address is "hidden by a WHOIS
privacy/proxy service": mail to such an address proves nothing about domain control.
Markers are data (below); matching is case-insensitive over contact fields only (names,
organisations, addresses), never over a registry's boilerplate.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

# (pattern, what it means) - first match wins, so specific services come before the
# generic words that would also match them.
PRIVACY_MARKERS: tuple[tuple[str, str], ...] = (
    (r"domains\s*by\s*proxy", "Domains By Proxy"),
    (r"contact\s*privacy", "Contact Privacy Inc."),
    (r"whois\s*guard", "WhoisGuard"),
    (r"privacy\s*guardian", "PrivacyGuardian.org"),
    (r"withheld\s*for\s*privacy", "Withheld for Privacy"),
    (r"perfect\s*privacy", "Perfect Privacy"),
    (r"identity\s*protect", "identity protection service"),
    (r"\bid\s*shield", "ID Shield"),
    (r"anonymi[sz]e", "anonymising service"),
    (r"whois\s*privacy", "WHOIS privacy service"),
    (r"privacy\s*protect", "privacy protection service"),
    (r"privacy\s*service", "privacy service"),
    (r"redacted", "redacted"),
    (r"data\s*protected", "data protected"),
    (r"not\s*disclosed", "not disclosed"),
    (r"non-?public\s*data", "non-public data"),
    (r"withheld", "withheld"),
    (r"gdpr\s*mask", "GDPR masked"),
    # registrars that publish no address at all point to a form or to RDAP instead
    (r"select\s*contact\s*domain\s*holder", "contact form instead of an address"),
    (r"query\s*the\s*rdap\s*service", "contact data not published"),
    (r"privacy", "privacy service"),
    (r"proxy", "proxy service"),
    # JPRS: a registrar's 公開代行 / 代理公開 (publishing its own data in place of the
    # registrant's) is a proxy contact
    (r"代理公開|代行", "registration proxy (代行)"),
    (r"プライバシー", "privacy service"),
    (r"非公開", "not disclosed (非公開)"),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), meaning) for p, meaning in PRIVACY_MARKERS)
_MAX_SHOWN = 80


def detect_privacy(fields: Mapping[str, str | None] | Iterable[str | None]) -> str | None:
    """Why these contact fields look like a privacy/proxy contact, or None.

    ``fields`` maps a label ("Registrant Organization") to its value, or is a plain
    iterable of values. The reason names the marker and the value it was found in, e.g.
    ``privacy/proxy contact (Domains By Proxy): Registrant Organization "Domains By Proxy, LLC"``.
    """
    items = fields.items() if isinstance(fields, Mapping) else ((None, v) for v in fields)
    for label, value in items:
        if not value:
            continue
        text = " ".join(str(value).split())
        for pattern, meaning in _COMPILED:
            if pattern.search(text):
                shown = text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 1] + "…"
                where = f"{label} " if label else ""
                return f'privacy/proxy contact ({meaning}): {where}"{shown}"'
    return None
