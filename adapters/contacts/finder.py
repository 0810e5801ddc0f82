"""Approver contacts for ``--validation email-whois``: RDAP, then WHOIS.

Each finder implements ``adapters.base.ContactFinder``: ``lookup(domain) -> Contact``.
A Contact with ``privacy`` set is a privacy/proxy contact; the engine rejects the order
with that reason. TransientError means "ask again later"; Refused means the answer
holds no usable administrator address.

    finder = from_settings(config["contacts"])   # RDAP and/or WHOIS
    contact = finder.lookup("www.example.jp")
"""
from __future__ import annotations

import logging
from typing import Sequence

from adapters.abilities import Checkable, Health
from adapters.base import AdapterError, Contact, ContactFinder, Refused, TransientError
from adapters.contacts.privacy import PRIVACY_MARKERS, detect_privacy
from adapters.contacts.rdap import RdapFinder, contact_from_rdap, parse_jcard
from adapters.contacts.whois import WhoisFinder, contact_from_answer, decode_whois, parse_whois

__all__ = [
    "ChainFinder", "RdapFinder", "WhoisFinder", "from_settings", "detect_privacy",
    "PRIVACY_MARKERS", "contact_from_rdap", "parse_jcard", "contact_from_answer",
    "decode_whois", "parse_whois",
]

log = logging.getLogger(__name__)


class ChainFinder:
    """Asks each finder in turn (RDAP first, then WHOIS) and keeps the first usable answer.

    A contact with an address and no privacy marker wins at once. Otherwise the first
    privacy/proxy contact is returned (so the rejection names it); failing that, the
    most hopeful failure: a TransientError (retrying may help), else a PermanentError
    (the operator must look), else Refused.
    """

    def __init__(self, finders: Sequence[ContactFinder]) -> None:
        if not finders:
            raise TypeError("ChainFinder needs at least one finder")
        self.finders = list(finders)

    def lookup(self, domain: str) -> Contact:
        private: Contact | None = None
        failures: list[AdapterError] = []
        for finder in self.finders:
            try:
                contact = finder.lookup(domain)
            except AdapterError as exc:
                log.warning("contact lookup for %s: %s", domain, exc.message)
                failures.append(exc)
                continue
            if contact.email and not contact.privacy:
                return contact
            private = private or contact
        if private is not None:
            return private
        # retrying may help > the operator must look (held) > the answer says no (rejected)
        failures.sort(key=lambda e: 0 if isinstance(e, TransientError)
                      else 2 if isinstance(e, Refused) else 1)
        raise failures[0]


    def check(self) -> Health:
        """Checkable (doctor): every finder of the chain is reachable."""
        return Health(" and ".join(f.check().detail for f in self.finders
                                   if isinstance(f, Checkable)))


def from_settings(settings: dict) -> ContactFinder | None:
    """The finder ``[contacts]`` describes: RDAP and/or WHOIS, or None when neither is set."""
    finders: list[ContactFinder] = []
    if settings["rdap"]:
        finders.append(RdapFinder(settings["rdap"], timeout=settings["timeout"],
                                  ca_bundle=settings["ca_bundle"]))
    if settings["whois"]:
        finders.append(WhoisFinder(settings["whois"], timeout=settings["timeout"]))
    if not finders:
        return None
    return finders[0] if len(finders) == 1 else ChainFinder(finders)
