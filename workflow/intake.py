"""Intake validation of an order's fields: one clear refusal naming the field.

Domain rules: the common name is a DNS host name (LDH labels of at most 63 octets,
at most 253 in all, two labels or more, not an IP address), stored lower-case as
A-labels (UTS 46 via ``idna``). ``www.<registrable domain>`` (Public Suffix List,
offline) also gets the bare domain as a SAN.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from adapters.base import BadInput
from adapters.common.names import is_email, publicly_issuable, registrable_domain
from adapters.common.names import normalize_host as _normalize
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

_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]+$")
LANGUAGES = ("ja", "en")

__all__ = ["COUNTRIES", "OrderFields", "names_for", "normalize_host", "registrable_domain",
           "validate_order"]


def normalize_host(value: str, field: str = "common_name") -> str:
    """Lower-cased A-label host name a public CA can issue for, or ValidationError naming
    ``field`` (special-use names, single labels and unknown TLDs are refused)."""
    try:
        host = _normalize(value, field)
    except BadInput as exc:
        raise ValidationError(field, exc.message, value) from None
    why = publicly_issuable(host)
    if why:
        raise ValidationError(field, f"{field} {value!r} refused: {why}; no public CA issues "
                              "for it", value)
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
    #: fields intake accepted for now but the customer must complete (``needs_info``)
    gaps: tuple[str, ...] = ()


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


def _plan(value: object, contract_id: str, contract: dict) -> str:
    """The order's plan is the contract's: taken from it when not given, else must match."""
    given = str(value or "").strip().lower()
    if given and given not in PLANS:
        raise ValidationError("plan", f"plan {value!r} unknown: use one of {', '.join(PLANS)}", given)
    held = str(contract.get("plan") or "").strip().lower()
    if given and held and given != held:
        raise ValidationError("plan", f"plan {given} does not match contract {contract_id}, "
                              f"which is plan {held}", given)
    if not (given or held):
        raise ValidationError("plan", f"plan is required (contract {contract_id} names none)")
    return given or held


def not_latin(text: str) -> bool:
    """The text has a letter of a script other than Latin (e.g. 株式会社…)."""
    return any(ch.isalpha() and not unicodedata.name(ch, "").startswith("LATIN")
               for ch in text)


def _organization(fields: dict, allow_gaps: bool) -> tuple[str, tuple[str, ...]]:
    value = fields.get("organization")
    if allow_gaps and value is not None and not_latin(str(value)):
        if len(str(value).strip()) > 64:
            raise ValidationError("organization", "organization is longer than 64 characters",
                                  value)
        if any(not ch.isprintable() for ch in str(value).strip()):
            raise ValidationError("organization", "organization holds control characters",
                                  value)
        return str(value).strip(), ("organization",)
    return _text(fields, "organization"), ()


def validate_order(fields: dict, contracts: dict, default_validation: str = "file",
                   ca_validations: frozenset[str] | None = None,
                   allow_gaps: bool = False) -> OrderFields:
    """Check every field of a new order; the first problem raises ValidationError.

    ``ca_validations``: the validation methods the configured CA can use (refused
    here rather than after payment). ``allow_gaps``: an organization not in Latin
    script is accepted and named in ``gaps`` (intake asks for the English name)."""
    known = {"common_name", "organization", "unit", "locality", "prefecture", "country", "plan",
             "contract", "email", "validation", "approver", "language", "renewal_of"}
    for key in fields:
        if key not in known:
            raise ValidationError(key, f"unknown order field {key!r}")
    cn = normalize_host(str(fields.get("common_name") or ""))
    organization, gaps = _organization(fields, allow_gaps)
    unit = _text(fields, "unit", required=False)
    locality = _text(fields, "locality")
    prefecture = _text(fields, "prefecture")
    country = (_text(fields, "country") or "").upper()
    if country not in COUNTRIES:
        raise ValidationError("country", f"country {fields.get('country')!r} is not an ISO 3166 two-letter code",
                              fields.get("country"))
    contract = str(fields.get("contract") or "").strip()
    if not contract:
        raise ValidationError("contract", "contract is required")
    if contract not in contracts:
        raise ValidationError("contract", f"contract {contract!r} not found", contract)
    plan = _plan(fields.get("plan"), contract, contracts[contract])
    email = str(fields.get("email") or "").strip()
    if not is_email(email):
        raise ValidationError("email", f"email {email!r} is not a valid address", email)
    validation = str(fields.get("validation") or default_validation).strip().lower()
    if validation not in VALIDATION_METHODS:
        raise ValidationError("validation", f"validation {validation!r} unknown: use one of "
                              f"{', '.join(VALIDATION_METHODS)}", validation)
    if ca_validations is not None and validation not in ca_validations:
        raise ValidationError("validation", f"validation {validation} refused: the configured CA "
                              f"validates by {', '.join(sorted(ca_validations))} only", validation)
    language = str(fields.get("language") or "ja").strip().lower()
    if language not in LANGUAGES:
        raise ValidationError("language", f"language {language!r} unknown: use ja or en", language)
    approver = fields.get("approver")
    approver = str(approver).strip().lower() if approver else None
    if approver and not is_email(approver):
        raise ValidationError("approver", f"approver {approver!r} is not a valid address", approver)
    renewal_of = str(fields["renewal_of"]).strip() if fields.get("renewal_of") else None
    names = names_for(cn)
    return OrderFields(cn, names[1:], organization, unit, locality, prefecture, country, plan,
                       contract, email, validation, approver, language, renewal_of, gaps)
