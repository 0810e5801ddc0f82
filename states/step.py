"""The one step function: what a trigger does to an order's position in its lifecycle.

The engine calls it for every command (after the ``transitions`` Machine has picked the
destination with the guards); replay calls it for every recorded event (guards are not
re-run: they judged the world as it was). So a what-if lifecycle changes both the same
way. Pure: no I/O; times are aware datetimes.

Rules, all read from the Lifecycle: entering a state with a deadline sets ``at + after``;
entering the hold state keeps the suspended state, deadline and visit (``entered_seq``)
until the resume trigger takes the order back there (only there) and restores them;
entering a state that records a reason records the given one or the trigger's default.
"""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from states.lifecycle import Lifecycle


class StepRefused(Exception):
    """The lifecycle has no such step (a pure signal; callers raise their own error)."""


class Position(NamedTuple):
    """Where an order stands: the lifecycle's part of its stored row."""

    state: str
    version: int = 0
    entered_seq: int = 0
    deadline_at: datetime | None = None
    deadline_trigger: str | None = None
    held_from: str | None = None
    held_deadline: datetime | None = None
    held_entered_seq: int | None = None
    reason: str | None = None


class Steps:
    """``step`` over one Lifecycle, with its lookups made once."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self._moves = frozenset((t.trigger, t.source, t.dest) for t in lifecycle.transitions)
        self._states = {s.name: s for s in lifecycle.states}
        self._reasons = {t.name: t.reason for t in lifecycle.trigger_rules}
        self._hold, self._resume = lifecycle.hold_state, lifecycle.resume_trigger

    def allows(self, trigger: str, source: str, dest: str) -> bool:
        return (trigger, source, dest) in self._moves

    def step(self, pos: Position, trigger: str, dest: str, at: datetime,
             reason: str | None = None) -> Position:
        """The position after ``trigger`` moved the order to ``dest`` at ``at``, or
        StepRefused saying why the lifecycle does not allow it."""
        source = pos.state
        if (trigger, source, dest) not in self._moves:
            raise StepRefused(f"({trigger}: {source} → {dest}) is refused by this lifecycle")
        state = self._states[dest]
        seq = pos.version + 1
        deadline = state.deadline
        if trigger == self._resume and source == self._hold:
            if dest != pos.held_from:
                raise StepRefused(f"({trigger} → {dest}) but the order was held from {pos.held_from}")
            at_ = pos.held_deadline if deadline else None
            return Position(dest, seq, pos.held_entered_seq or seq, at_,
                            deadline.trigger if at_ else None)
        new = Position(dest, seq, seq, at + deadline.after if deadline else None,
                       deadline.trigger if deadline else None, pos.held_from, pos.held_deadline,
                       pos.held_entered_seq, pos.reason)
        if dest == self._hold:
            new = new._replace(held_from=source, held_deadline=pos.deadline_at,
                               held_entered_seq=pos.entered_seq)
        if state.records_reason:
            new = new._replace(reason=reason or self._reasons.get(trigger) or trigger)
        return new
