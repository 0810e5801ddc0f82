"""Constructed approver addresses (BR 3.2.2.4.4) and registrable domains.

Pure functions over the Public Suffix List shipped with ``publicsuffixlist`` (offline,
ICANN section only: a private suffix such as ``github.io`` does not make a registrable
domain for certificate validation purposes). Names are handled as A-labels (IDNA 2008,
UTS #46 mapping), lower case, without a trailing dot.
"""
from __future__ import annotations

from adapters.base import BadInput
from adapters.common import names

#: BR 3.2.2.4.4: the only local parts a constructed address may have
APPROVER_LOCAL_PARTS = ("admin", "administrator", "webmaster", "hostmaster", "postmaster")


def normalize_domain(name: str, field: str = "common_name") -> str:
    """A-label, lower-case form of a host name (a leading ``*.`` is dropped).

    Raises BadInput naming ``field`` when it is not a host name.
    """
    text = (name or "").strip().rstrip(".")
    if text.startswith("*."):
        text = text[2:]
    try:
        return names.normalize_host(text, field)
    except BadInput:
        raise BadInput(field, f"{field} {name!r} is not a valid domain name", value=name) from None


def registrable_domain(name: str) -> str:
    """The registrable domain of ``name`` (ICANN public suffix plus one label).

    ``www.example.co.jp`` -> ``example.co.jp``. A public suffix itself (``co.jp``) has
    none: BadInput(field="common_name").
    """
    domain = normalize_domain(name)
    registrable = names.registrable_domain(domain)
    if not registrable:
        raise BadInput("common_name", f"{name} is a public suffix, not a registrable domain",
                       value=name)
    return registrable


def approver_domains(common_name: str) -> list[str]:
    """The domains a constructed address may use for ``common_name``: the name itself,
    then each parent down to and including the registrable domain."""
    domain = normalize_domain(common_name)
    floor = registrable_domain(domain)
    domains = [domain]
    while domains[-1] != floor:
        domains.append(domains[-1].split(".", 1)[1])
    return domains


def check_approver(address: str, common_name: str) -> str:
    """Accept a BR 3.2.2.4.4 constructed address for ``common_name``; return it lower-cased.

    Only admin, administrator, webmaster, hostmaster and postmaster at the common name's
    domain or a parent up to the registrable domain. Anything else raises
    BadInput(field="approver") with a one-line message saying what would do.
    """
    domains = approver_domains(common_name)
    base, floor = domains[0], domains[-1]
    text = (address or "").strip()
    local, at, domain_text = text.rpartition("@")
    if not at or not local or not domain_text or any(ch.isspace() for ch in text):
        raise BadInput("approver", f"approver {address!r} is not an email address",
                       approver=address)
    try:
        domain = normalize_domain(domain_text, field="approver")
    except BadInput:
        raise BadInput("approver", f"approver {address} is not at {base} or a parent domain",
                       approver=address) from None
    if domain not in domains:
        raise BadInput("approver", f"approver {address} is not at {base} or a parent domain",
                       approver=address, common_name=common_name)
    if local.lower() not in APPROVER_LOCAL_PARTS:
        allowed = ", ".join(APPROVER_LOCAL_PARTS[:-1]) + " or " + APPROVER_LOCAL_PARTS[-1]
        raise BadInput("approver", f"approver {address} refused: use {allowed} at {base} "
                       f"or a parent up to {floor}", approver=address, common_name=common_name)
    return f"{local.lower()}@{domain}"


def default_approver(common_name: str) -> str:
    """``admin@<registrable domain>``: the address mailed when none is given."""
    return f"admin@{registrable_domain(common_name)}"
