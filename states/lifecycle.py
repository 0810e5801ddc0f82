"""States, transitions and the effects each entry queues, as frozen data."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

PLANS = ("lite", "basic", "pro", "flex", "secure", "advance", "expert", "ex-cloud")
#: plans whose application-only variant exists (ex-cloud without a supported Plesk)
APPLICATION_ONLY = ("ex-cloud",)
VALIDATION_METHODS = ("file", "email", "email-whois", "http-01", "dns-01")


@dataclass(frozen=True)
class Effect:
    """Work queued in the outbox when a state is entered.

    kind:  what the dispatcher runs (notify, make_csr, request_csr, submit_ca, poll_ca,
           install, deliver, cleanup_validation, notify_operator).
    param: e.g. the message template for notify.
    when:  a guard name; the effect is queued only when it passes (None: always).
    bound: True when the effect only makes sense while the order still sits in the
           state that queued it (the dispatcher drops it otherwise); notifications
           are not bound: the customer is told even if the order already moved on.
    """

    kind: str
    param: str | None = None
    when: str | None = None
    bound: bool = True


@dataclass(frozen=True)
class State:
    name: str
    description: str
    effects: tuple[Effect, ...] = ()
    #: (duration, trigger) fired by the daemon when the order is still here
    deadline: tuple[timedelta, str] | None = None
    final: bool = False


@dataclass(frozen=True)
class Transition:
    trigger: str
    source: str
    dest: str
    #: guard names (states.guards.GUARDS); all must pass
    conditions: tuple[str, ...] = ()
    #: who may fire it from outside (operator CLI / library); effects fire the rest
    description: str = ""


@dataclass(frozen=True)
class Lifecycle:
    initial: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    #: states from which `hold` may move an order, and `resume` brings it back
    holdable: tuple[str, ...] = field(default=())

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.trigger for t in self.transitions))

    def table(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """(trigger, source) -> allowed destinations, for replay's dict-lookup fold."""
        out: dict[tuple[str, str], tuple[str, ...]] = {}
        for t in self.transitions:
            out[(t.trigger, t.source)] = out.get((t.trigger, t.source), ()) + (t.dest,)
        return out


NOTIFY = "notify"
_T = Transition

_IN_FLIGHT = ("ordered", "paid", "awaiting_csr", "submitted", "awaiting_approval", "issued")
_HOLDABLE = ("paid", "awaiting_csr", "submitted", "awaiting_approval", "issued")

_STATES = (
    State("new", "not yet placed (only the `place` trigger leaves it)"),
    State("ordered", "application accepted and validated",
          effects=(Effect(NOTIFY, "order_received", bound=False),)),
    State("paid", "payment confirmed; work starts",
          effects=(Effect(NOTIFY, "work_started", bound=False),
                   Effect("make_csr", when="full_service"),
                   Effect("request_csr", when="application_only"))),
    State("awaiting_csr", "application-only: waiting for the customer's CSR",
          deadline=(timedelta(days=30), "cancel")),
    State("submitted", "application sent to the CA",
          effects=(Effect("submit_ca"),)),
    State("awaiting_approval", "CA accepted; approval mail sent or validation file placed",
          effects=(Effect(NOTIFY, "approval_pending", bound=False),
                   Effect("poll_ca")),
          deadline=(timedelta(days=10), "expire")),
    State("issued", "certificate and chain received and verified",
          effects=(Effect("cleanup_validation", bound=False),
                   Effect("install", when="full_service"),
                   Effect("deliver", when="application_only"))),
    State("installed", "installed and verified on every target",
          effects=(Effect(NOTIFY, "installed", bound=False),), final=True),
    # the deliver effect *is* the mail with the certificate attached: nothing more to send
    State("delivered", "application-only: certificate sent to the customer", final=True),
    State("cancelled", "approval expired, admin refused, or customer cancelled",
          effects=(Effect(NOTIFY, "cancelled", bound=False),
                   Effect("cleanup_validation", bound=False),
                   Effect("cancel_ca", bound=False)), final=True),
    State("rejected", "cannot be applied for, or the CA refused",
          effects=(Effect(NOTIFY, "rejected", bound=False),
                   Effect("cleanup_validation", bound=False)), final=True),
    State("on_hold", "an effect failed past its retries; an operator must act",
          effects=(Effect(NOTIFY, "on_hold", bound=False),)),
)

_TRANSITIONS = (
    _T("place", "new", "ordered", ("contract_active", "flex_has_fixed_ip"),
       "order accepted"),
    _T("place", "new", "rejected", (), "well-formed but cannot be applied for"),
    _T("pay", "ordered", "paid", ("contract_active",), "payment confirmed"),
    _T("submit", "paid", "submitted", ("full_service", "has_csr"), "key and CSR made; apply"),
    _T("request_csr", "paid", "awaiting_csr", ("application_only",), "ask the customer for a CSR"),
    _T("submit", "awaiting_csr", "submitted", ("has_csr",), "customer CSR received"),
    _T("ca_accept", "submitted", "awaiting_approval", (), "CA accepted the application"),
    _T("issue", "submitted", "issued", ("has_certificate",), "CA issued at once"),
    _T("issue", "awaiting_approval", "issued", ("has_certificate",), "approved and issued"),
    _T("install", "issued", "installed", ("full_service",), "installed on every server"),
    _T("deliver", "issued", "delivered", ("application_only",), "sent to the customer"),
    _T("expire", "awaiting_approval", "cancelled", (), "approval deadline passed"),
    *(_T("cancel", s, "cancelled", (), "cancelled") for s in (*_IN_FLIGHT, "on_hold")),
    *(_T("reject", s, "rejected", (), "refused") for s in (*_IN_FLIGHT, "on_hold")),
    *(_T("hold", s, "on_hold", (), "an effect failed past its retries") for s in _HOLDABLE),
    *(_T("resume", "on_hold", s, ("held_from_here",), "operator resumed") for s in _HOLDABLE),
)

LIFECYCLE = Lifecycle(initial="new", states=_STATES, transitions=_TRANSITIONS,
                      holdable=_HOLDABLE)
