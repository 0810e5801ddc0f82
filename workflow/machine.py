"""The ``transitions`` Machine built from a Lifecycle, and the model it moves.

One Machine per Engine. A command borrows an :class:`OrderModel` (attached with
``add_model`` when first made, kept in a small free list afterwards: as many as commands
ever ran at once, never one per thread), loads the order into it, and fires the trigger.
The Machine does the rest with callbacks generated from states/ data:

- ``conditions``: the named guards of states.guards; the first refusal's reason is kept;
- ``on_enter`` of each state, ``enter_<state>``: the lifecycle's one step function
  (states.step) moves the order's position and sets or restores its deadline, then the
  state's entry effects and reminders become outbox rows.

The engine then writes what the model holds. Nothing here touches the database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from transitions import Machine, MachineError

from states import GUARDS, GuardContext, Lifecycle, Position, State, StepRefused, Steps

from workflow.clock import iso
from workflow.errors import InvalidTransition


class OrderModel:
    """The order one command moves: its row, contract, the time, the trigger's data, and
    what the move produced (new position, outbox rows, the first refusal met)."""

    state: str  # kept by the Machine

    def load(self, row: Mapping[str, Any], contract, now: datetime, stamp: str,
             data: Mapping[str, Any], position: Position) -> None:
        self.ctx = GuardContext(row, contract, now, data)
        self.stamp = stamp
        self.position = position
        self.effects: list[tuple] = []
        self.refusal: str | None = None

    def clear(self) -> None:
        self.ctx = self.position = self.effects = self.refusal = self.stamp = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Move:
    position: Position
    effects: list[tuple]
    refusal: str | None


def _condition(name: str):
    guard = GUARDS[name]

    def check(event) -> bool:
        model = event.model
        ctx = model.ctx
        if ctx.dest != event.transition.dest:
            ctx = GuardContext(ctx.order, ctx.contract, ctx.now, ctx.data, event.transition.dest)
        reason = guard(ctx)
        if reason and model.refusal is None:
            model.refusal = reason
        return reason is None

    check.__name__ = name
    return check


def _entry_callback(state: State, steps: Steps, reminder_days: Mapping[str, Any]):
    """``enter_<state>``: the lifecycle's step function moves the order's position (and
    sets or restores its deadline); then the outbox rows entering ``state`` queues."""
    resume_trigger = steps.lifecycle.resume_trigger

    def enter(event) -> None:
        model = event.model
        ctx = model.ctx
        try:
            pos = model.position = steps.step(model.position, event.event.name, state.name,
                                              ctx.now, ctx.data.get("reason") or model.refusal)
        except StepRefused as exc:
            raise InvalidTransition(ctx.order["id"], event.transition.source, event.event.name,
                                    str(exc)) from None
        order, now = ctx.order, ctx.now
        # a resumed order, or one that stays where it is (a change of approver), gets its
        # work re-queued, not its mail repeated
        resumed = event.event.name == resume_trigger or event.transition.source == state.name
        seq, stamp, rows = pos.entered_seq, model.stamp, model.effects
        for effect in state.effects:
            if resumed and not effect.bound:
                continue  # resume re-queues the work, it does not repeat the mail
            if effect.when and GUARDS[effect.when](ctx):
                continue
            suffix = f":{effect.param}" if effect.param else ""
            rows.append((order["id"], seq, state.name, effect.kind, effect.param,
                         f"{order['id']}:{seq}:{effect.kind}{suffix}", int(effect.bound), stamp))
        if resumed or pos.deadline_at is None:
            return
        for reminder in state.reminders:
            if reminder.when and GUARDS[reminder.when](ctx):
                continue
            for days in reminder_days.get(reminder.days_setting, ()):
                at = pos.deadline_at - timedelta(days=days)
                if at > now:
                    rows.append((order["id"], seq, state.name, "notify", reminder.template,
                                 f"{order['id']}:{seq}:notify:{reminder.template}:{days}d", 1,
                                 iso(at)))

    enter.__name__ = f"enter_{state.name}"
    return enter


class OrderMachine:
    def __init__(self, lifecycle: Lifecycle, reminder_days: Mapping[str, Any]) -> None:
        self.lifecycle = lifecycle
        self.steps = Steps(lifecycle)
        conditions = {n: _condition(n) for n in GUARDS}
        self.machine = Machine(
            model=None,
            states=[{"name": s.name, "on_enter": [_entry_callback(s, self.steps, reminder_days)]}
                    for s in lifecycle.states],
            transitions=[{"trigger": t.trigger, "source": t.source, "dest": t.dest,
                          "conditions": [conditions[c] for c in t.conditions]}
                         for t in lifecycle.transitions],
            initial=lifecycle.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        self.triggers = frozenset(lifecycle.triggers)
        self._free: list[OrderModel] = []

    def _borrow(self) -> OrderModel:
        try:
            return self._free.pop()  # list.pop/append are atomic: no lock needed
        except IndexError:
            model = OrderModel()
            self.machine.add_model(model, initial=self.lifecycle.initial)
            return model

    def _give_back(self, model: OrderModel) -> None:
        model.clear()
        self._free.append(model)

    def move(self, row: Mapping[str, Any], position: Position, trigger: str, contract,
             now: datetime, stamp: str, data: Mapping[str, Any]) -> Move:
        """Fire ``trigger`` on the order: its new position, the outbox rows to queue, and
        the first refusal met on the way (a fallback transition caught a refused one:
        ``place`` → ``rejected``); InvalidTransition when nothing moves."""
        if trigger not in self.triggers:
            raise InvalidTransition(row["id"], position.state, trigger, f"unknown trigger {trigger!r}")
        model = self._borrow()
        try:
            self.machine.set_state(position.state, model=model)
            model.load(row, contract, now, stamp, data, position)
            try:
                moved = model.trigger(trigger)  # type: ignore[attr-defined]
            except MachineError:
                raise InvalidTransition(row["id"], position.state, trigger) from None
            if not moved:
                raise InvalidTransition(row["id"], position.state, trigger, model.refusal)
            return Move(model.position, model.effects, model.refusal)
        finally:
            self._give_back(model)
