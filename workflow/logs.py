"""The two log lines an operator follows: one per committed transition, one per effect
outcome. Standard ``logging`` only, and nothing is configured here: the handlers and the
format belong to whoever runs certflow (the CLI sets them in
:mod:`workflow.ops.logformat`; an embedding application keeps its own).

Each line carries its values twice: in the message, for people, and under the record's
``certflow`` attribute, for the JSON formatter (one object per line). Neither ever
holds trigger data: the CSR, certificates, tokens and keys stay out by construction.

A transition is logged after its transaction commits, never before: the engine
collects the moves of the running command (:class:`CommittedMoves`) and writes them once
COMMIT has returned; a rolled-back command logs nothing.
"""
from __future__ import annotations

import logging
import threading

TRANSITIONS = logging.getLogger("certflow.transitions")
EFFECTS = logging.getLogger("certflow.effects")


def transition(order_id: str, trigger: str, source: str, dest: str, actor: str) -> None:
    TRANSITIONS.info("order %s: %s %s -> %s by %s", order_id, trigger, source, dest, actor,
                     extra={"certflow": {"order": order_id, "trigger": trigger,
                                         "source": source, "dest": dest, "actor": actor}})


def effect_outcome(order_id: str, effect: str, attempt: int, result: str,
                   seconds: float) -> None:
    # "later" (the CA has no answer yet) repeats at every poll: DEBUG, not the operator's line
    level = logging.DEBUG if result == "later" else logging.INFO
    EFFECTS.log(level, "order %s: effect %s attempt %d %s in %.3f s", order_id, effect, attempt,
                result, seconds,
                extra={"certflow": {"order": order_id, "effect": effect, "attempt": attempt,
                                    "result": result, "duration_seconds": round(seconds, 6)}})


class CommittedMoves:
    """The moves of the commands running on each thread, logged when each commits."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _stack(self) -> list[list[tuple]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def begin(self) -> None:
        self._stack().append([])

    def add(self, order_id: str, trigger: str, source: str, dest: str, actor: str) -> None:
        stack = self._stack()
        if stack:
            stack[-1].append((order_id, trigger, source, dest, actor))
        else:  # a transaction the engine did not open: it commits with its caller
            transition(order_id, trigger, source, dest, actor)

    def end(self, committed: bool) -> None:
        moves = self._stack().pop()
        if committed:
            for move in moves:
                transition(*move)
