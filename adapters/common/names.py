"""Host names and e-mail addresses: the one definition workflow/ and adapters/ share.

- :func:`host_name_pattern` / :func:`is_host_name`: the LDH syntax of a DNS name
  (labels of 1-63 octets, letters, digits and inner hyphens; 253 octets in all).
- :func:`normalize_host`: a host name as certificates carry it (lower-case A-label,
  UTS #46 mapping, no trailing dot), refused with a message naming the field.
- :func:`registrable_domain`: ICANN public suffix plus one label, from the Public
  Suffix List shipped with ``publicsuffixlist`` (offline, one instance).
- :func:`publicly_issuable`: why no public CA can issue for a name (RFC 6761/7686
  special-use names, single labels, a TLD unknown to the PSL's ICANN section), or None.
- :data:`EMAIL`: the address syntax (local part of RFC 5322 atoms, LDH domain).
"""
from __future__ import annotations

import functools
import ipaddress
import re

import idna
from publicsuffixlist import PublicSuffixList

from adapters.base import BadInput

#: one LDH label; with ``underscore`` a service label such as ``_acme-challenge`` too
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SERVICE_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_LOWER_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

EMAIL = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")
MAX_EMAIL = 254

#: RFC 6761 / 6762 / 7686 / 8375 / 9476 special-use names and ICANN's reserved
#: ``internal``: no publicly-trusted certificate is ever issued under them
SPECIAL_USE_SUFFIXES = ("local", "localhost", "test", "invalid", "example", "onion", "alt",
                        "internal", "home.arpa")


@functools.lru_cache(maxsize=4)
def host_name_pattern(underscore: bool = False, trailing_dot: bool = False) -> re.Pattern:
    """A compiled full-match pattern of a DNS host name (one label or more)."""
    first = _SERVICE_LABEL if underscore else _LABEL
    dot = r"\.?" if trailing_dot else ""
    return re.compile(rf"(?=.{{1,253}}{dot}$)(?:{first}\.)*{_LABEL}{dot}")


def is_host_name(text: object, underscore: bool = False, trailing_dot: bool = False) -> bool:
    pattern = host_name_pattern(underscore, trailing_dot)
    return isinstance(text, str) and pattern.fullmatch(text) is not None


def is_email(text: object) -> bool:
    return isinstance(text, str) and len(text) <= MAX_EMAIL and EMAIL.fullmatch(text) is not None


@functools.lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # ICANN section only: a private suffix (github.io) makes no registrable domain for
    # domain validation, and an unknown TLD is no public suffix (no default "*" rule)
    return PublicSuffixList(only_icann=True)


@functools.lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str | None:
    """``www.example.co.jp`` -> ``example.co.jp``; None for a public suffix, a single
    label or a name under a TLD the ICANN section does not list."""
    return _psl().privatesuffix(host, accept_unknown=False)


def a_label(name: str, field: str = "names") -> str:
    """A DNS name as certificates carry it: lower-case ASCII (IDNA A-label, UTS #46), no
    trailing dot; a leading ``*.`` is kept. BadInput naming ``field`` when it cannot be."""
    text = name.strip().rstrip(".")
    if text.isascii():
        return text.lower()
    prefix = "*." if text.startswith("*.") else ""
    try:
        return prefix + idna.encode(text.removeprefix("*."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise BadInput(field, f"{field} {name!r} is not a valid internationalised name: {exc}",
                       value=name) from exc


def normalize_host(value: object, field: str = "common_name") -> str:
    """Lower-case A-label host name (two labels or more, not an IP address, no wildcard);
    else BadInput naming ``field`` with the reason."""
    raw = (value if isinstance(value, str) else "").strip()
    if not raw:
        raise BadInput(field, f"{field} is required")
    if raw.endswith("."):
        raw = raw[:-1]
    try:
        ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    else:
        raise BadInput(field, f"{field} {value!r} is an IP address, not a host name", value=value)
    if raw.startswith("*."):
        raise BadInput(field, f"{field} {value!r}: wildcard names are not sold", value=value)
    host = a_label(raw, field)
    if len(host) > 253:
        raise BadInput(field, f"{field} is longer than 253 characters", value=value)
    labels = host.split(".")
    if len(labels) < 2:
        raise BadInput(field, f"{field} {value!r} needs at least two labels", value=value)
    for label in labels:
        if not _LOWER_LABEL.fullmatch(label):
            raise BadInput(field, f"{field} {value!r}: label {label!r} is not a valid DNS label",
                           value=value)
    if labels[-1].isdigit():
        raise BadInput(field, f"{field} {value!r}: top-level label is numeric", value=value)
    if any(label.startswith("xn--") for label in labels):
        try:
            idna.decode(host)
        except (idna.IDNAError, UnicodeError) as exc:
            raise BadInput(field, f"{field} {value!r} is not a valid A-label: {exc}",
                           value=value) from exc
    return host


def publicly_issuable(host: str) -> str | None:
    """Why no public CA can issue for the normalised ``host``, or None when one can."""
    for suffix in SPECIAL_USE_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return f"{host} is under the special-use name .{suffix} (RFC 6761/7686)"
    if "." not in host:
        return f"{host} is a single label"
    if _psl().publicsuffix(host, accept_unknown=False) is None:
        return f"{host} is not under a top-level domain of the Public Suffix List (ICANN section)"
    if registrable_domain(host) is None:
        return f"{host} is a public suffix"
    return None
