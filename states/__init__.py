"""The certificate-order lifecycle as data: states, transitions, guards, effects,
deadlines and the dated CA/Browser Forum policy. Pure: no I/O, imports nothing of ours.

Everything else reads this package: the engine builds one ``transitions`` Machine from
``LIFECYCLE``, ``certflow graph`` draws it, replay folds histories through it;
both move an order with the one pure ``step`` function (states/step.py).
A what-if lifecycle is ``dataclasses.replace(LIFECYCLE, transitions=...)``.
"""
from states.lifecycle import (
    Deadline,
    Effect,
    Reminder,
    Trigger,
    Lifecycle,
    State,
    Transition,
    LIFECYCLE,
    PLANS,
    APPLICATION_ONLY,
    VALIDATION_METHODS,
)
from states.guards import GuardContext, GUARDS
from states.step import Position, StepRefused, Steps
from states.policy import POLICY, PolicyRule, rule_at, max_lifetime_days, requested_lifetime

__all__ = [
    "Deadline", "Effect", "Reminder", "Trigger", "Position", "StepRefused", "Steps", "Lifecycle", "State", "Transition", "LIFECYCLE", "PLANS", "APPLICATION_ONLY",
    "VALIDATION_METHODS", "GuardContext", "GUARDS", "POLICY", "PolicyRule",
    "rule_at", "max_lifetime_days", "requested_lifetime",
]
