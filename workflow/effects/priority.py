"""Which due effect runs first, and how many of one kind may run at once.

The rule: **work further along the lifecycle goes first.** Among due effects the
dispatcher takes installs (and deliveries) first, then CA polls, then CA submissions,
then key/CSR making, then clean-ups, and notifications last; within one kind, the
oldest due (``next_at``, then queue order) first. So an order that is nearer its
certificate overtakes orders that started later, the first paid order is the first
installed, and a backlog of mail never delays a key, a CA step or an install: mail
waits only for certificate work that is due now, and that work is quick (no adapter
call sleeps; "not yet" is a Later).

Limits (``[effects.limits]``) bound each kind on its own, so a slow kind (an SMTP
server that stalls) holds at most its limit of workers and the others keep running.
"""
from __future__ import annotations

from typing import Mapping

from workflow.config import EFFECT_LIMITS

#: effect kinds in the order the dispatcher takes them (index = rank, 0 first)
ORDER: tuple[str, ...] = (
    "install", "deliver",            # issued: the certificate goes out
    "poll_ca",                       # awaiting_approval: fetch what the CA issued
    "submit_ca",                     # submitted: the CA application
    "make_csr", "request_csr",       # paid: key and CSR
    "cleanup_validation", "cancel_ca",  # after the fact: tidying up
    "notify",                        # telling people: never ahead of their certificate
)


def ranked(kinds) -> list[str]:
    """``kinds`` in dispatch order; kinds this table does not know go before notify."""
    last = len(ORDER) - 1
    return sorted(kinds, key=lambda k: (ORDER.index(k) if k in ORDER else last - 0.5, k))


def limits_of(config: Mapping) -> dict[str, int]:
    """``[effects.limits]`` over the defaults: a kind not named keeps its default."""
    return {**EFFECT_LIMITS, **(config.get("limits") or {})}


def wanted(kinds, free: int, limits: Mapping[str, int], running: Mapping[str, int]
           ) -> list[tuple[str, int]]:
    """(kind, how many more may start) for the claim, in dispatch order: each kind up to
    its limit less what runs now, all of them together up to ``free`` workers."""
    out = []
    for kind in ranked(kinds):
        room = min(free, limits.get(kind, free) - running.get(kind, 0))
        if room > 0:
            out.append((kind, room))
    return out
