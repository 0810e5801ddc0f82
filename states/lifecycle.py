"""States, transitions and the effects each entry queues, as frozen data."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

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


class Deadline(NamedTuple):
    """Fired by the daemon when the order still sits in the state ``after`` its entry.
    ``reason`` may say ``{days}``: it is filled from ``after``, never written out."""

    after: timedelta
    trigger: str
    reason: str = "deadline passed: {trigger}"

    @property
    def reason_text(self) -> str:
        return self.reason.format(days=self.after.days, trigger=self.trigger)


@dataclass(frozen=True)
class Reminder:
    """Notices queued on entering a state, ``days`` (a list in ``[deadlines] <days_setting>``
    of config.toml) before the state's deadline; only when guard ``when`` passes, and not
    again when an order is resumed into the state."""

    template: str
    days_setting: str
    when: str | None = None


@dataclass(frozen=True)
class State:
    name: str
    description: str
    effects: tuple[Effect, ...] = ()
    #: fired by the daemon when the order is still here (a (duration, trigger) pair is
    #: accepted and made a Deadline)
    deadline: Deadline | None = None
    final: bool = False
    #: a certificate has been issued to an order in this state (``Order.certificate``)
    carries_certificate: bool = False
    #: entering the state records why (``Order.reason``): given, or the trigger's default
    records_reason: bool = False
    reminders: tuple[Reminder, ...] = ()

    def __post_init__(self) -> None:
        if self.deadline is not None and not isinstance(self.deadline, Deadline):
            object.__setattr__(self, "deadline", Deadline(*self.deadline))


@dataclass(frozen=True)
class Transition:
    trigger: str
    source: str
    dest: str
    #: guard names (states.guards.GUARDS); all must pass
    conditions: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Trigger:
    """A trigger's rules. ``public`` ones may be fired from outside (operator CLI, the
    library's ``Engine.fire``); the others only by effects, deadlines and the dispatcher.
    ``data`` are the keys it accepts (anything else is refused naming the key);
    ``reason`` is recorded when it enters a state that records a reason without one."""

    name: str
    public: bool = False
    data: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Lifecycle:
    initial: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    #: states from which `hold` may move an order, and `resume` brings it back
    holdable: tuple[str, ...] = field(default=())
    trigger_rules: tuple[Trigger, ...] = ()
    #: the state `hold` enters, and the trigger that brings an order back from it
    hold_state: str = "on_hold"
    resume_trigger: str = "resume"
    hold_trigger: str = "hold"
    #: the state in which an order takes the customer's CSR (Engine.submit_csr), and the
    #: trigger it fires; the trigger a recorded certificate fires (Engine.record_certificate)
    customer_csr_state: str = "awaiting_csr"
    csr_trigger: str = "submit"
    certificate_trigger: str = "issue"

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

    def trigger(self, name: str) -> Trigger:
        for t in self.trigger_rules:
            if t.name == name:
                return t
        return Trigger(name)

    @property
    def public_triggers(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.trigger_rules if t.public)

    @property
    def final_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if s.final)

    @property
    def certificate_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if s.carries_certificate)

    def deadline_reason(self, trigger: str) -> str:
        """The reason recorded when a state's deadline fires ``trigger``."""
        for s in self.states:
            if s.deadline and s.deadline.trigger == trigger:
                return s.deadline.reason_text
        return f"deadline passed: {trigger}"


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
          deadline=Deadline(timedelta(days=30), "cancel",
                            "the customer's CSR did not arrive within {days} days")),
    State("submitted", "application sent to the CA",
          effects=(Effect("submit_ca"),)),
    State("awaiting_approval", "CA accepted; approval mail sent or validation file placed",
          effects=(Effect(NOTIFY, "approval_pending", bound=False),
                   Effect("poll_ca")),
          deadline=Deadline(timedelta(days=10), "expire",
                            "the domain administrator did not approve within {days} days"),
          reminders=(Reminder("approval_reminder", "approval_reminder_days",
                              when="mail_validation"),)),
    State("issued", "certificate and chain received and verified",
          effects=(Effect("cleanup_validation", bound=False),
                   Effect("install", when="full_service"),
                   Effect("deliver", when="application_only")),
          carries_certificate=True),
    State("installed", "installed and verified on every target",
          effects=(Effect(NOTIFY, "installed", bound=False),), final=True,
          carries_certificate=True),
    # the deliver effect *is* the mail with the certificate attached: nothing more to send
    State("delivered", "application-only: certificate sent to the customer", final=True,
          carries_certificate=True),
    State("cancelled", "approval expired, admin refused, or customer cancelled",
          effects=(Effect(NOTIFY, "cancelled", bound=False),
                   Effect("cleanup_validation", bound=False),
                   Effect("cancel_ca", bound=False)), final=True, records_reason=True),
    State("rejected", "cannot be applied for, or the CA refused",
          effects=(Effect(NOTIFY, "rejected", bound=False),
                   Effect("cleanup_validation", bound=False)), final=True, records_reason=True),
    State("on_hold", "an effect failed past its retries; an operator must act",
          effects=(Effect(NOTIFY, "on_hold", bound=False),), records_reason=True),
    # the CA revoked the certificate before `order revoke` recorded it (no live certificate:
    # no renewal opens for it; `order renew` opens one by hand)
    State("revoked", "the certificate was revoked at the CA (RFC 5280 reason recorded)",
          effects=(Effect(NOTIFY, "revoked", bound=False),), final=True, records_reason=True),
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
    *(_T("revoke", s, "revoked", (), "certificate revoked at the CA")
      for s in ("issued", "installed", "delivered")),
    # a new approver before approval: recorded where the CA has no application yet; an
    # application the CA holds is withdrawn (by the engine) and made again
    *(_T("change_approver", s, s, ("mail_validation_given",), "approver changed")
      for s in ("ordered", "paid")),
    _T("change_approver", "awaiting_approval", "submitted", ("mail_validation_given",),
       "approver changed: apply again"),
)

_TRIGGERS = (
    # public: the operator CLI and the library may fire these
    Trigger("place", public=True),
    Trigger("pay", public=True),
    Trigger("cancel", public=True, data=("reason",), reason="cancelled"),
    Trigger("reject", public=True, data=("reason",), reason="refused"),
    Trigger("resume", public=True),
    # internal: only effects, deadlines and the dispatcher fire these; a customer CSR and
    # a certificate from a manual CA enter through Engine.submit_csr / record_certificate
    Trigger("submit", data=("csr",)),
    Trigger("request_csr"),
    Trigger("ca_accept", data=("application_id", "challenges", "approver")),
    Trigger("issue", data=("certificate", "chain", "info")),
    Trigger("install", data=("servers",)),
    Trigger("deliver"),
    Trigger("expire", data=("reason",), reason="approval not given within the deadline"),
    Trigger("hold", data=("reason",), reason="an effect failed past its retries"),
    # the operator's commands (Engine.revoke, Engine.set_approver) check before firing
    Trigger("revoke", data=("reason",), reason="unspecified"),
    Trigger("change_approver", data=("approver",)),
)

LIFECYCLE = Lifecycle(initial="new", states=_STATES, transitions=_TRANSITIONS,
                      holdable=_HOLDABLE, trigger_rules=_TRIGGERS)
