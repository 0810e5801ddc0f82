"""Domain contacts over RDAP (RFC 9083 answers, RFC 7095 jCard, RFC 9537 redaction).

``GET {base}/domain/{name}`` returns a domain object whose ``entities`` carry roles
(``administrative``, ``registrant``, ``technical``, ``registrar`` ...) and a jCard
``vcardArray``. Entities may nest; a registrar's nested entities (its abuse desk) are
the registrar's, not the domain's, and are skipped.
"""
from __future__ import annotations

import contextlib
import json
import logging
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator


import httpx

from adapters.contacts.approvers import registrable_domain
from adapters.abilities import Health
from adapters.common.redact import redact_url
from adapters.common.retry_after import retry_after_seconds
from adapters.base import BadInput, Contact, PermanentError, Refused, TransientError
from adapters.contacts.privacy import detect_privacy

log = logging.getLogger(__name__)

ROLE_ORDER = ("administrative", "registrant", "technical")
_NOT_THE_DOMAINS = {"registrar", "abuse", "reseller", "sponsor"}
_MAX_DEPTH = 4
MAX_ANSWER_BYTES = 2 * 1024 * 1024


@dataclass
class RdapContact:
    """The parts of one entity that matter here."""

    roles: frozenset[str]
    name: str | None = None
    organization: str | None = None
    emails: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)

    def labelled(self) -> dict[str, str]:
        role = "/".join(sorted(self.roles & set(ROLE_ORDER))) or "contact"
        out = {f"{role} fn": self.name, f"{role} org": self.organization}
        out.update({f"{role} email": e for e in self.emails[:1]})
        out.update({f"{role} remark {i + 1}": r for i, r in enumerate(self.remarks)})
        return {k: v for k, v in out.items() if v}


def _text(value: Any, depth: int = 0) -> str | None:
    """A jCard value as text: strings as they are, structured values joined."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and depth < _MAX_DEPTH:
        parts = [p for p in (_text(v, depth + 1) for v in value) if p]
        return " ".join(parts) or None
    return None


def parse_jcard(vcard_array: Any) -> dict[str, list[str]]:
    """``["vcard", [[name, params, type, value...], ...]]`` -> {name: [text values]}."""
    props: dict[str, list[str]] = {}
    if not (isinstance(vcard_array, list) and len(vcard_array) == 2
            and isinstance(vcard_array[1], list)):
        return props
    for prop in vcard_array[1]:
        if not (isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str)):
            continue
        values = [t for t in (_text(v) for v in prop[3:]) if t]
        if values:
            props.setdefault(prop[0].lower(), []).extend(values)
    return props


def _remark_texts(remarks: Any) -> list[str]:
    texts = []
    for remark in remarks if isinstance(remarks, list) else []:
        if isinstance(remark, dict):
            for part in (remark.get("title"), remark.get("description")):
                text = _text(part)
                if text:
                    texts.append(text)
    return texts


def _entities(node: Any, depth: int = 0) -> Iterator[RdapContact]:
    if depth > _MAX_DEPTH or not isinstance(node, dict):
        return
    entities = node.get("entities")
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, dict):
            continue
        roles = entity.get("roles")
        roles = frozenset(r.lower() for r in roles if isinstance(r, str)) \
            if isinstance(roles, list) else frozenset()
        if roles & _NOT_THE_DOMAINS:
            continue
        props = parse_jcard(entity.get("vcardArray"))
        emails = list(props.get("email", []))
        emails += [u[7:] for u in props.get("contact-uri", []) if u.lower().startswith("mailto:")]
        yield RdapContact(roles=roles, name=(props.get("fn") or [None])[0],
                          organization=(props.get("org") or [None])[0],
                          emails=[e.strip() for e in emails if "@" in e],
                          remarks=_remark_texts(entity.get("remarks")))
        yield from _entities(entity, depth + 1)


def _redactions(data: dict) -> list[str]:
    names = []
    redacted = data.get("redacted")
    for item in redacted if isinstance(redacted, list) else []:
        if not isinstance(item, dict):
            continue
        name = item.get("name") if isinstance(item.get("name"), dict) else {}
        label = _text(name.get("type")) or _text(name.get("description"))
        if label:
            names.append(label)
    return names


def contact_from_rdap(data: dict, domain: str, source: str) -> Contact:
    """The Contact a domain object gives: the administrative entity's email, else the
    registrant's, else the technical one's; privacy when its data is redacted or a
    privacy/proxy service. Refused when no address can be found."""
    entities = list(_entities(data))
    contacts = [c for c in entities if c.roles & set(ROLE_ORDER)]
    registrant = [c for c in contacts if "registrant" in c.roles]
    # RFC 9083 role "proxy": the registrant is represented by a proxy service
    proxies = [c for c in entities if "proxy" in c.roles]
    proxy_reason = None
    if proxies:
        shown = proxies[0].organization or proxies[0].name or "unnamed"
        proxy_reason = f'privacy/proxy contact (RDAP proxy entity): "{shown}"'
    for role in ROLE_ORDER:
        for contact in contacts:
            if role in contact.roles and contact.emails:
                checked = {**{k: v for r in registrant for k, v in r.labelled().items()},
                           **contact.labelled()}
                return Contact(email=contact.emails[0], name=contact.name,
                               organization=contact.organization, source=source,
                               privacy=proxy_reason or detect_privacy(checked))
    everything = {k: v for c in contacts for k, v in c.labelled().items()}
    privacy = proxy_reason or detect_privacy(everything)
    redacted = _redactions(data)
    if not privacy and redacted:
        privacy = "privacy/proxy contact (redacted, RFC 9537): " + ", ".join(redacted[:4])
    if privacy:
        first = (registrant or contacts or [RdapContact(frozenset())])[0]
        return Contact(email=None, name=first.name, organization=first.organization,
                       source=source, privacy=privacy)
    raise Refused(f"no administrator email in RDAP answer for {domain}", domain=domain,
                  source=source)


def _retry_after(headers: httpx.Headers) -> float | None:
    return retry_after_seconds(headers.get("Retry-After"), datetime.now(timezone.utc))


class RdapFinder:
    """Finds a domain's administrator contact by RDAP (RFC 9083).

    ``base_url`` is the RDAP service base (``[contacts] rdap``), e.g.
    ``https://rdap.example/rdap``; ``ca_bundle`` a PEM file of CAs to trust for it.
    Network failures, 429 and 5xx raise TransientError naming the server; 404 and an
    answer without an address raise Refused; other refusals PermanentError.
    """

    def __init__(self, base_url: str, timeout: float = 10.0, ca_bundle: str | None = None) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise BadInput("contacts.rdap", f"contacts.rdap {base_url!r} is not an http(s) URL",
                           value=base_url)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.verify: ssl.SSLContext | bool = True
        if ca_bundle:
            try:
                self.verify = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise BadInput("contacts.ca_bundle", f"contacts.ca_bundle {ca_bundle} cannot be "
                               "read as PEM certificates", value=ca_bundle) from exc

    def lookup(self, domain: str) -> Contact:
        name = registrable_domain(domain)
        url = f"{self.base_url}/domain/{name}"
        with self.edge(name):
            status, headers, body = self._get(url)
        if status == 404:
            raise Refused(f"{name} not found in RDAP at {self.base_url}", domain=name,
                          server=self.base_url)
        if status == 429 or status >= 500:
            raise TransientError(f"RDAP server {self.base_url} answered HTTP {status} for {name}",
                                 retry_after=_retry_after(headers), server=self.base_url,
                                 domain=name, status=status)
        if status != 200:
            raise PermanentError(f"RDAP server {self.base_url} refused the query for {name}: "
                                 f"HTTP {status}", server=self.base_url, domain=name,
                                 status=status)
        try:
            data = json.loads(body) if body is not None else None
        except (ValueError, RecursionError) as exc:
            raise TransientError(f"RDAP server {self.base_url} sent no JSON for {name}",
                                 server=self.base_url, domain=name) from exc
        if not isinstance(data, dict):
            raise TransientError(f"RDAP server {self.base_url} sent no domain object for {name}"
                                 + ("" if body is not None else f" (over {MAX_ANSWER_BYTES} bytes)"),
                                 server=self.base_url, domain=name)
        log.info("RDAP %s answered for %s", url, name)
        return contact_from_rdap(data, name, f"rdap {url}")

    def check(self) -> Health:
        """Checkable (doctor): the server answers HTTP at its base URL (any status)."""
        with self.edge("the base URL"):
            self._get(self.base_url)
        return Health(f"rdap {redact_url(self.base_url)} reachable")

    @contextlib.contextmanager
    def edge(self, name: str) -> Iterator[None]:
        """The adapter's edge: httpx, ssl and socket exceptions become adapters.base errors."""
        where = redact_url(self.base_url)
        try:
            yield
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise TransientError(f"RDAP server {where} did not answer for {name}: {reason}",
                                 server=where, domain=name) from exc

    def _get(self, url: str) -> tuple[int, httpx.Headers, bytes | None]:
        """Status, headers and body (None when larger than MAX_ANSWER_BYTES)."""
        with httpx.Client(timeout=self.timeout, verify=self.verify, follow_redirects=True,
                          max_redirects=5) as client:
            with client.stream("GET", url, headers={
                    "Accept": "application/rdap+json, application/json;q=0.9"}) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        return response.status_code, response.headers, None
                return response.status_code, response.headers, bytes(body)
