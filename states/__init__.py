"""The certificate-order lifecycle as data: states, transitions, guards, effects,
deadlines and the dated CA/Browser Forum policy. Pure: no I/O, imports nothing of ours.

Everything else reads this package: the engine builds one ``transitions`` Machine from
``LIFECYCLE``, ``certflow graph`` draws it, replay folds histories through it.
A what-if lifecycle is ``dataclasses.replace(LIFECYCLE, transitions=...)``.
"""
from states.lifecycle import (
    Effect,
    Lifecycle,
    State,
    Transition,
    LIFECYCLE,
    PLANS,
    APPLICATION_ONLY,
    VALIDATION_METHODS,
)
from states.guards import GuardContext, GUARDS, refusal
from states.policy import POLICY, PolicyRule, rule_at, max_lifetime_days, requested_lifetime

__all__ = [
    "Effect", "Lifecycle", "State", "Transition", "LIFECYCLE", "PLANS", "APPLICATION_ONLY",
    "VALIDATION_METHODS", "GuardContext", "GUARDS", "refusal", "POLICY", "PolicyRule",
    "rule_at", "max_lifetime_days", "requested_lifetime",
]
