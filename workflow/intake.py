"""Intake validation of an order's fields: one clear refusal naming the field.

Domain rules: the common name is a DNS host name (LDH labels of at most 63 octets,
at most 253 in all, two labels or more, not an IP address), stored lower-case as
A-labels (UTS 46 via ``idna``). ``www.<registrable domain>`` (Public Suffix List,
offline) also gets the bare domain as a SAN.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

import idna
from publicsuffixlist import PublicSuffixList

from states import PLANS, VALIDATION_METHODS
from workflow.errors import ValidationError

# ISO 3166-1 alpha-2, officially assigned codes.
COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

_LDH = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]+$")
LANGUAGES = ("ja", "en")


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList(only_icann=True)


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str | None:
    return _psl().privatesuffix(host)


def normalize_host(value: str, field: str = "common_name") -> str:
    """Lower-cased A-label host name, or ValidationError naming ``field``."""
    raw = (value or "").strip()
    if not raw:
        raise ValidationError(field, f"{field} is required")
    if raw.endswith("."):
        raw = raw[:-1]
    try:
        ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValidationError(field, f"{field} {value!r} is an IP address, not a host name", value)
    if raw.startswith("*."):
        raise ValidationError(field, f"{field} {value!r}: wildcard names are not sold", value)
    try:
        host = idna.encode(raw, uts46=True).decode("ascii") if not raw.isascii() else raw.lower()
    except idna.IDNAError as exc:
        raise ValidationError(field, f"{field} {value!r} is not a valid internationalised name: {exc}", value) from exc
    if len(host) > 253:
        raise ValidationError(field, f"{field} is longer than 253 characters", value)
    labels = host.split(".")
    if len(labels) < 2:
        raise ValidationError(field, f"{field} {value!r} needs at least two labels", value)
    for label in labels:
        if not _LDH.match(label):
            raise ValidationError(field, f"{field} {value!r}: label {label!r} is not a valid DNS label", value)
    if labels[-1].isdigit():
        raise ValidationError(field, f"{field} {value!r}: top-level label is numeric", value)
    if host.startswith("xn--") or "." + "xn--" in host:
        try:
            idna.decode(host)
        except idna.IDNAError as exc:
            raise ValidationError(field, f"{field} {value!r} is not a valid A-label: {exc}", value) from exc
    if registrable_domain(host) is None:
        raise ValidationError(field, f"{field} {value!r} is a public suffix or not under one", value)
    return host


def names_for(common_name: str) -> tuple[str, ...]:
    """CN first, then SANs: ``www.<registrable domain>`` also covers the bare domain."""
    if common_name.startswith("www."):
        bare = common_name[4:]
        if registrable_domain(common_name) == bare:
            return (common_name, bare)
    return (common_name,)


@dataclass(frozen=True)
class OrderFields:
    common_name: str
    sans: tuple[str, ...]
    organization: str
    unit: str | None
    locality: str
    prefecture: str
    country: str
    plan: str
    contract: str
    email: str
    validation: str
    approver: str | None
    language: str
    renewal_of: str | None


def _text(fields: dict, name: str, required: bool = True, ascii_only: bool = True) -> str | None:
    value = fields.get(name)
    if value is None or str(value).strip() == "":
        if required:
            raise ValidationError(name, f"{name} is required")
        return None
    value = str(value).strip()
    if len(value) > 64:
        raise ValidationError(name, f"{name} is longer than 64 characters (X.509 upper bound)", value)
    if ascii_only and not _PRINTABLE_ASCII.match(value):
        raise ValidationError(name, f"{name} must be ASCII (the official English name)", value)
    return value


def validate_order(fields: dict, contracts: dict, default_validation: str = "file") -> OrderFields:
    """Check every field of a new order; the first problem raises ValidationError."""
    known = {"common_name", "organization", "unit", "locality", "prefecture", "country", "plan",
             "contract", "email", "validation", "approver", "language", "renewal_of"}
    for key in fields:
        if key not in known:
            raise ValidationError(key, f"unknown order field {key!r}")
    cn = normalize_host(str(fields.get("common_name") or ""))
    organization = _text(fields, "organization")
    unit = _text(fields, "unit", required=False)
    locality = _text(fields, "locality")
    prefecture = _text(fields, "prefecture")
    country = (_text(fields, "country") or "").upper()
    if country not in COUNTRIES:
        raise ValidationError("country", f"country {fields.get('country')!r} is not an ISO 3166 two-letter code",
                              fields.get("country"))
    plan = str(fields.get("plan") or "").strip().lower()
    if plan not in PLANS:
        raise ValidationError("plan", f"plan {fields.get('plan')!r} unknown: use one of {', '.join(PLANS)}", plan)
    contract = str(fields.get("contract") or "").strip()
    if not contract:
        raise ValidationError("contract", "contract is required")
    if contract not in contracts:
        raise ValidationError("contract", f"contract {contract!r} not found in config", contract)
    email = str(fields.get("email") or "").strip()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValidationError("email", f"email {email!r} is not a valid address", email)
    validation = str(fields.get("validation") or default_validation).strip().lower()
    if validation not in VALIDATION_METHODS:
        raise ValidationError("validation", f"validation {validation!r} unknown: use one of "
                              f"{', '.join(VALIDATION_METHODS)}", validation)
    language = str(fields.get("language") or "ja").strip().lower()
    if language not in LANGUAGES:
        raise ValidationError("language", f"language {language!r} unknown: use ja or en", language)
    approver = fields.get("approver")
    approver = str(approver).strip().lower() if approver else None
    if approver and not _EMAIL.match(approver):
        raise ValidationError("approver", f"approver {approver!r} is not a valid address", approver)
    renewal_of = str(fields["renewal_of"]).strip() if fields.get("renewal_of") else None
    names = names_for(cn)
    return OrderFields(cn, names[1:], organization, unit, locality, prefecture, country, plan,
                       contract, email, validation, approver, language, renewal_of)
