"""The one step function: what a trigger does to an order's position in its lifecycle.

``Steps.fold`` is the one implementation. The engine steps one event through it for every
command (``Steps.step``, after the ``transitions`` Machine has picked the destination with
the guards); replay folds each recorded history through it (guards are not re-run: they
judged the world as it was). So a what-if lifecycle changes both the same way. Pure: no
I/O; times are aware datetimes.

Rules, all read from the Lifecycle: entering a state with a deadline sets ``at + after``;
entering the hold state keeps the suspended state, deadline and visit (``entered_seq``)
until the resume trigger takes the order back there (only there) and restores them;
entering a state that records a reason records the given one or the trigger's default.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, NamedTuple

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


class Steps:
    """``fold`` and ``step`` over one Lifecycle, with its lookups made once."""

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

    def fold(self, pos: Position, events: Iterable[tuple],
             reason: str | None = None) -> tuple[Position, str | None]:
        """Move ``pos`` through ``events``: (order_id, seq, at, trigger, source, dest) rows
        of one order in seq order (order_id is not read; ``at`` an aware datetime or its
        ISO 8601 text, parsed only when a deadline needs it). Returns the position reached
        and None, or the position before the first event the lifecycle refuses and why.
        ``reason`` is recorded by a state that records one (the engine's single event).

        The one implementation of the rules: the engine steps one event through it, replay
        a whole history (in one loop over local variables: it runs once per event)."""
        actions = self._actions
        state, version, entered, deadline, deadline_trigger, held_from, held_deadline, \
            held_seq, why = pos
        error = None
        for _, seq, at, trigger, source, dest in events:
            if seq != version + 1:
                error = f"event {version + 1} missing (next is {seq})"
                break
            if source != state:
                error = f"event {seq} ({trigger}) starts from {source} but the order was {state}"
                break
            action = actions.get((trigger, source, dest))
            if action is None:
                error = f"event {seq} ({trigger}: {source} → {dest}) is refused by this lifecycle"
                break
            limit, records_reason, resumes, holds, default_reason = action
            if resumes:
                if dest != held_from:
                    error = f"event {seq} ({trigger} → {dest}) but the order was held from {held_from}"
                    break
                deadline = held_deadline if limit else None
                deadline_trigger = limit.trigger if deadline else None
                entered, why = held_seq or seq, None
                held_from = held_deadline = held_seq = None
            else:
                if holds:  # keep what the hold suspends: the state, its deadline and visit
                    held_from, held_deadline, held_seq = source, deadline, entered
                if limit is None:
                    deadline = deadline_trigger = None
                else:
                    deadline = (datetime.fromisoformat(at) if at.__class__ is str else at) \
                        + limit.after
                    deadline_trigger = limit.trigger
                entered = seq
                if records_reason:
                    why = reason or default_reason
            state, version = dest, seq
        return Position(state, version, entered, deadline, deadline_trigger, held_from,
                        held_deadline, held_seq, why), error

    def step(self, pos: Position, trigger: str, dest: str, at: datetime,
             reason: str | None = None) -> Position:
        """The position after ``trigger`` moved the order to ``dest`` at ``at``, or
        StepRefused saying why the lifecycle does not allow it: :meth:`fold` of one event."""
        new, error = self.fold(pos, ((None, pos[1] + 1, at, trigger, pos[0], dest),), reason)
        if error:
            raise StepRefused(error)
        return new
