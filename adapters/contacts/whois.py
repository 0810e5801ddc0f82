"""Domain contacts over WHOIS (RFC 3912): JPRS key/value answers and gTLD answers.

RFC 3912 is a line over TCP and text back until the server closes. Answers are not
standardised, so parsing is forgiving and never raises: it collects what it recognises.

* JPRS (``.jp``) answers are ``[Key]  value`` lines, optionally prefixed ``a.`` .. ``z.``,
  in Japanese or English (``[Email]`` / ``[電子メール]``), grouped by headers such as
  ``Domain Information: [ドメイン情報]`` and ``Contact Information: [公開連絡窓口]``.
  Organisation-type domains (``co.jp``) name their administrative contact by handle
  (``m. [登録担当者]  XX123JP``); that handle is looked up with ``CONTACT <handle>``.
* gTLD answers are ``Key: value`` lines (``Admin Email:``, ``Registrant Email:``); a thin
  registry answer refers to the registrar's server (``Registrar WHOIS Server: host``),
  which is asked once.
"""
from __future__ import annotations

import contextlib
import logging
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from adapters.contacts.approvers import registrable_domain
from adapters.abilities import Health
from adapters.base import BadInput, Contact, Refused, TransientError
from adapters.common.hostport import format_host_port, parse_host_port
from adapters.common.names import EMAIL
from adapters.contacts.privacy import detect_privacy

log = logging.getLogger(__name__)

WHOIS_PORT = 43
MAX_ANSWER_BYTES = 1024 * 1024
ROLES = ("admin", "registrant", "tech")   # whose email is used, in this order

_JPRS_LINE = re.compile(r"^\s*(?:[a-z]\.\s*)?\[(?P<key>[^\[\]]{1,40})\]\s*(?P<value>.*)$")
_HEADER = re.compile(
    r"^\s*(?P<what>Domain|Contact)\s+Information\s*:\s*(?:\[[^\]]*\])?\s*$", re.IGNORECASE)
_KEY_VALUE = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z0-9 ./()_-]{0,60}?)\s*:\s*(?P<value>.*)$")
_NOT_FOUND = re.compile(r"^[ \t]*(no match|not found|no entries found|no data found|"
                        r"domain not found|no object found|status:\s*(free|available))",
                        re.IGNORECASE | re.MULTILINE)
_HANDLE = re.compile(r"[A-Za-z0-9]{2,20}")
_MAX_EMAIL_FIELD = 512  # an address is at most 254 characters; bounds the regex work

# JPRS keys (lower case) -> attribute
_JPRS_EMAIL = {"email", "e-mail", "電子メール"}
_JPRS_NAME = {"名前", "name", "氏名", "last, first"}
_JPRS_ORG = {"組織名", "organization", "登録者名", "registrant"}
_JPRS_ADMIN_HANDLE = {"登録担当者", "administrative contact"}
_REFERRAL_KEYS = {"registrar whois server", "whois server", "refer", "whois", "referralserver"}
_GTLD_ROLES = {"registrant": "registrant", "admin": "admin", "administrative": "admin",
               "tech": "tech", "technical": "tech"}


@dataclass
class WhoisAnswer:
    """What was recognised in one answer: contact fields per role, referral, handle."""

    #: (role, attribute, label as printed, value)
    fields: list[tuple[str, str, str, str]] = field(default_factory=list)
    referral: str | None = None
    admin_handle: str | None = None
    not_found: bool = False

    def value(self, role: str, attr: str) -> str | None:
        for r, a, _, v in self.fields:
            if r == role and a == attr and v:
                return v
        return None

    def email(self, role: str) -> str | None:
        for r, a, _, v in self.fields:
            if r == role and a == "email":
                found = EMAIL.search(v[:_MAX_EMAIL_FIELD])
                if found:
                    return found.group(0)
        return None

    def labelled(self, roles: tuple[str, ...] = ROLES) -> dict[str, str]:
        return {label: v for r, _, label, v in self.fields if r in roles and v}


def decode_whois(data: bytes) -> str:
    """Text of an answer: UTF-8, else the Japanese encodings JPRS and others use."""
    if b"\x1b$" in data or b"\x1b(" in data:
        for encoding in ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    for encoding in ("utf-8", "euc_jp", "shift_jis"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


def parse_whois(text: str) -> WhoisAnswer:
    """Recognise contacts, a registrar referral and a JPRS admin handle; never raises."""
    answer = WhoisAnswer()
    section = None            # "domain" | "contact" for JPRS answers
    for line in text.replace("\r", "").split("\n"):
        header = _HEADER.match(line)
        if header:
            section = header.group("what").lower()
            continue
        jprs = _JPRS_LINE.match(line)
        if jprs:
            _jprs_field(answer, section, jprs.group("key").strip(), jprs.group("value").strip())
            continue
        pair = _KEY_VALUE.match(line)
        if pair:
            _gtld_field(answer, pair.group("key"), pair.group("value").strip())
    answer.not_found = not answer.fields and bool(_NOT_FOUND.search(text))
    return answer


def _jprs_field(answer: WhoisAnswer, section: str | None, key: str, value: str) -> None:
    k = key.lower()
    # A domain answer's contact block is its public contact (公開連絡窓口); a handle
    # answer (担当者情報) is the administrative contact we asked for: both are "admin".
    role = "admin" if section == "contact" else "registrant"
    if k in _JPRS_EMAIL:
        answer.fields.append(("admin" if section != "domain" else "registrant", "email",
                              f"[{key}]", value))
    elif k in _JPRS_NAME:
        answer.fields.append((role, "name", f"[{key}]", value))
    elif k in _JPRS_ORG:
        answer.fields.append((role, "organization", f"[{key}]", value))
    elif k in _JPRS_ADMIN_HANDLE and value and answer.admin_handle is None:
        handle = value.split()[0]
        if _HANDLE.fullmatch(handle):
            answer.admin_handle = handle


def _gtld_field(answer: WhoisAnswer, key: str, value: str) -> None:
    k = " ".join(key.lower().split())
    if k in _REFERRAL_KEYS:
        if value and answer.referral is None:
            answer.referral = value
        return
    first, _, rest = k.partition(" ")
    role = _GTLD_ROLES.get(first)
    if role is None or not rest:
        return
    rest = rest.removeprefix("contact ")
    if "email" in rest or "e-mail" in rest:
        attr = "email"
    elif "organization" in rest or "organisation" in rest:
        attr = "organization"
    elif rest == "name":
        attr = "name"
    else:
        return
    answer.fields.append((role, attr, key.strip(), value))


class WhoisFinder:
    """Finds a domain's administrator contact by WHOIS (RFC 3912).

    ``server`` is "host:port" (port 43 if omitted). The registrable domain is asked;
    a registrar referral in the answer is followed once (``follow_referrals``), on port
    43 unless the referral says ``host:port`` or ``referrals`` maps the referred host to
    another "host:port" (tests, or a local relay). Network failures raise TransientError
    naming the server; an answer without an administrator address raises Refused.
    """

    def __init__(self, server: str, timeout: float = 10.0, follow_referrals: bool = True,
                 referrals: Mapping[str, str] | None = None) -> None:
        self.host, self.port = parse_host_port(server, "contacts.whois", WHOIS_PORT)
        self.timeout = timeout
        self.follow_referrals = follow_referrals
        self.referrals = {k.lower().rstrip("."): v for k, v in (referrals or {}).items()}

    @property
    def server(self) -> str:
        return format_host_port(self.host, self.port)

    def lookup(self, domain: str) -> Contact:
        name = registrable_domain(domain)
        server = (self.host, self.port)
        answer = parse_whois(self.query(server, name, name))
        if answer.admin_handle and not any(answer.email(r) for r in ROLES):
            handle_answer = parse_whois(self.query(server, f"CONTACT {answer.admin_handle}", name))
            answer.fields.extend(("admin", a, label, v) for _, a, label, v in handle_answer.fields)
        referred = self._referral(answer.referral) if self.follow_referrals else None
        if referred and referred != server:
            try:
                registrar_answer = parse_whois(self.query(referred, name, name))
            except TransientError:
                if not any(answer.email(r) for r in ROLES):
                    raise
                log.warning("registrar WHOIS %s failed; using the registry's answer for %s",
                            format_host_port(*referred), name)
            else:
                if registrar_answer.fields:
                    answer, server = registrar_answer, referred
        return contact_from_answer(answer, name, f"whois {format_host_port(*server)}")

    def check(self) -> Health:
        """Checkable (doctor): the server accepts a connection; nothing is asked."""
        with self.edge(self.server, "a connection"):
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                pass
        return Health(f"whois {self.server} reachable")

    @staticmethod
    @contextlib.contextmanager
    def edge(where: str, domain: str) -> Iterator[None]:
        """The adapter's edge: socket exceptions (every OSError) become TransientError."""
        try:
            yield
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise TransientError(f"WHOIS server {where} did not answer for {domain}: {reason}",
                                 server=where, domain=domain) from exc

    def query(self, server: tuple[str, int], query: str, domain: str) -> str:
        """Send one query line; the decoded answer. TransientError on network failure."""
        host, port = server
        where = format_host_port(host, port)
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        with self.edge(where, domain):
            with socket.create_connection((host, port), timeout=self.timeout) as sock:
                sock.sendall(query.encode("ascii") + b"\r\n")
                while size < MAX_ANSWER_BYTES:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("timed out")
                    sock.settimeout(remaining)
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
        log.info("WHOIS %s answered %d bytes for %r", where, size, query)
        return decode_whois(b"".join(chunks))

    def _referral(self, value: str | None) -> tuple[str, int] | None:
        if not value:
            return None
        text = value.strip()
        if re.match(r"https?://", text, re.IGNORECASE):
            return None  # a web page, not a WHOIS server
        text = re.sub(r"^r?whois://", "", text, flags=re.IGNORECASE).rstrip("/")
        mapped = self.referrals.get(text.lower().rstrip("."))
        try:
            return parse_host_port(mapped or text, "whois referral", WHOIS_PORT)
        except BadInput:
            log.warning("ignoring malformed WHOIS referral %r", value)
            return None


def contact_from_answer(answer: WhoisAnswer, domain: str, source: str) -> Contact:
    """The Contact an answer gives: admin, else registrant, else tech address; the
    privacy marker, if any, of that contact or of the registrant. Refused without one."""
    for role in ROLES:
        email = answer.email(role)
        if email:
            privacy = detect_privacy(answer.labelled((role, "registrant")))
            return Contact(email=email, name=answer.value(role, "name"),
                           organization=answer.value(role, "organization")
                           or answer.value("registrant", "organization"),
                           source=source, privacy=privacy)
    privacy = detect_privacy(answer.labelled())
    if privacy:
        return Contact(email=None, name=answer.value("admin", "name"),
                       organization=answer.value("registrant", "organization"),
                       source=source, privacy=privacy)
    if answer.not_found:
        raise Refused(f"{domain} is not registered according to {source}", domain=domain,
                      source=source)
    raise Refused(f"no administrator email in WHOIS answer for {domain}", domain=domain,
                  source=source)
