"""Dated CA/Browser Forum Baseline Requirements rules, as data keyed by date."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class PolicyRule:
    since: date
    ballot: str
    max_lifetime_days: int
    whois_email: bool  # may a publicly-trusted CA mail the WHOIS contact (BR 3.2.2.4.2)?
    summary: str


POLICY: tuple[PolicyRule, ...] = (
    PolicyRule(date(1970, 1, 1), "BR", 398, True, "398-day certificates; WHOIS mail allowed"),
    PolicyRule(date(2025, 7, 15), "SC-080", 398, False,
               "no WHOIS-based mail to the domain contact (BR 3.2.2.4.2)"),
    PolicyRule(date(2026, 3, 15), "SC-081", 200, False, "lifetime and reuse at most 200 days"),
    PolicyRule(date(2027, 3, 15), "SC-081", 100, False, "lifetime and reuse at most 100 days"),
    PolicyRule(date(2029, 3, 15), "SC-081", 47, False,
               "lifetime at most 47 days, domain-validation reuse at most 10 days"),
)

WHOIS_MAIL_ENDED = next(r.since for r in POLICY if not r.whois_email)
#: random values (approval tokens, file contents) live at most this long
RANDOM_VALUE_MAX_DAYS = 30


def rule_at(when: datetime | date) -> PolicyRule:
    day = when.date() if isinstance(when, datetime) else when
    current = POLICY[0]
    for rule in POLICY:
        if rule.since <= day:
            current = rule
    return current


def max_lifetime_days(when: datetime | date) -> int:
    return rule_at(when).max_lifetime_days


def max_lifetime(when: datetime | date) -> timedelta:
    """The cap on a certificate issued at ``when``, as BR 6.3.2 counts validity
    (notAfter - notBefore + 1 s)."""
    return timedelta(days=max_lifetime_days(when))


def requested_lifetime(when: datetime | date) -> timedelta:
    """What to ask a CA for, counted the same way: one day under the cap. A CA that
    backdates notBefore must shorten notAfter by as much (see the local CA)."""
    return timedelta(days=max_lifetime_days(when) - 1)
