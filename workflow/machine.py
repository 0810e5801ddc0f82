"""The one shared ``transitions`` Machine built from a Lifecycle.

Orders are not Machine objects: each thread owns one small model attached to the shared
Machine; a command sets that model to the order's stored state, fires the trigger, and
reads the destination. Guards are the named functions of states.guards; the first
refusal's reason is kept so the caller can say why a move was refused.
"""
from __future__ import annotations

import logging
import threading
from transitions import Machine, MachineError

from states import GUARDS, GuardContext, Lifecycle
from workflow.errors import InvalidTransition

logging.getLogger("transitions").setLevel(logging.WARNING)


class _OrderModel:
    """What the Machine moves: only a state and the context of the current fire."""

    def __init__(self) -> None:
        self.ctx: GuardContext | None = None
        self.refusal: str | None = None


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


class SharedMachine:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        conditions = {n: _condition(n) for n in GUARDS}
        self.machine = Machine(
            model=None,
            states=list(lifecycle.state_names),
            transitions=[{"trigger": t.trigger, "source": t.source, "dest": t.dest,
                          "conditions": [conditions[c] for c in t.conditions]}
                         for t in lifecycle.transitions],
            initial=lifecycle.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        self._local = threading.local()
        self.triggers = frozenset(lifecycle.triggers)

    def _model(self) -> _OrderModel:
        model = getattr(self._local, "model", None)
        if model is None:
            model = _OrderModel()
            self.machine.add_model(model)
            self._local.model = model
        return model

    def resolve(self, order_id: str, state: str, trigger: str,
                ctx: GuardContext) -> tuple[str, str | None]:
        """(destination, first refusal met on the way) of ``trigger`` from ``state``, or
        InvalidTransition with the reason. A refusal with a destination happens when a
        fallback transition caught a refused one (``place`` → ``rejected``)."""
        if trigger not in self.triggers:
            raise InvalidTransition(order_id, state, trigger, f"unknown trigger {trigger!r}")
        model = self._model()
        self.machine.set_state(state, model=model)
        model.ctx = ctx
        model.refusal = None
        try:
            moved = model.trigger(trigger)
        except MachineError:
            raise InvalidTransition(order_id, state, trigger) from None
        finally:
            model.ctx = None
        if not moved:
            raise InvalidTransition(order_id, state, trigger, model.refusal)
        return model.state, model.refusal  # type: ignore[attr-defined]
