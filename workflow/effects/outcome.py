"""What an effect handler gets (EffectContext) and returns: an Outcome (done; fire a trigger), Later (not done
yet, look again: the adapters' one "not yet" type), or None (done, nothing to fire)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from adapters.base import Pending

if TYPE_CHECKING:
    from states import Lifecycle
    from workflow.model import Order

#: not done yet and not a failure; ``Later(retry_after, detail)``
Later = Pending


@dataclass(frozen=True)
class Outcome:
    """The effect is done; fire ``trigger`` (if any) with ``data`` on the order."""

    trigger: str | None = None
    data: dict = field(default_factory=dict)


__all__ = ["Outcome", "Later", "Pending", "EffectContext"]


@dataclass(frozen=True)
class EffectContext:
    """What a handler gets: the order, its outbox row, the adapters, the clock, and the
    few engine services effects use (not the Engine)."""

    order: "Order"
    job: dict
    adapters: Any
    clock: Any
    config: Any
    lifecycle: "Lifecycle"
    keys: Any                 # workflow.keystore.KeyStore
    records: Any              # the store's reads: event_time, certificate_pem
    verify: Callable[[str, dict], dict]  # Engine.verified_certificate
    contracts: Any = None     # workflow.contracts.ContractBook (Engine.contracts)

    def now(self) -> datetime:
        return self.clock.now()
