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


class _Action(NamedTuple):
    """What one (trigger, source, dest) of the lifecycle does, worked out once."""

    deadline: object          # the destination's Deadline, or None
    records_reason: bool
    resumes: bool             # the resume trigger out of the hold state
    holds: bool               # into the hold state
    default_reason: str


_new_position = tuple.__new__  # Position(...) without the keyword machinery: replay's hot path


class Steps:
    """``step`` over one Lifecycle, with its lookups made once."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        states = {s.name: s for s in lifecycle.states}
        reasons = {t.name: t.reason for t in lifecycle.trigger_rules}
        hold, resume = lifecycle.hold_state, lifecycle.resume_trigger
        self._actions = {
            (t.trigger, t.source, t.dest): _Action(
                states[t.dest].deadline, states[t.dest].records_reason,
                t.trigger == resume and t.source == hold, t.dest == hold,
                reasons.get(t.trigger) or t.trigger)
            for t in lifecycle.transitions}

    def allows(self, trigger: str, source: str, dest: str) -> bool:
        return (trigger, source, dest) in self._actions

    def step(self, pos: Position, trigger: str, dest: str, at: datetime | str,
             reason: str | None = None) -> Position:
        """The position after ``trigger`` moved the order to ``dest`` at ``at`` (an aware
        datetime, or its ISO 8601 text as events store it: parsed only when a deadline
        needs it), or StepRefused saying why the lifecycle does not allow it."""
        source = pos[0]
        action = self._actions.get((trigger, source, dest))
        if action is None:
            raise StepRefused(f"({trigger}: {source} → {dest}) is refused by this lifecycle")
        deadline, records_reason, resumes, holds, default_reason = action
        seq = pos[1] + 1
        if resumes:
            if dest != pos.held_from:
                raise StepRefused(f"({trigger} → {dest}) but the order was held from {pos.held_from}")
            at_ = pos.held_deadline if deadline else None
            return Position(dest, seq, pos.held_entered_seq or seq, at_,
                            deadline.trigger if at_ else None)
        if deadline is None:
            new = _new_position(Position, (dest, seq, seq, None, None) + pos[5:])
        else:
            when = datetime.fromisoformat(at) if isinstance(at, str) else at
            new = _new_position(Position, (dest, seq, seq, when + deadline.after, deadline.trigger)
                                + pos[5:])
        if holds:
            new = new._replace(held_from=source, held_deadline=pos.deadline_at,
                               held_entered_seq=pos.entered_seq)
        if records_reason:
            new = new._replace(reason=reason or default_reason)
        return new
