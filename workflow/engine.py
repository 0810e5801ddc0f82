"""The engine: every command is one ``BEGIN IMMEDIATE`` transaction.

load the order row → fire the trigger on the order's Machine model (guards decide; the
lifecycle's step function moves the position; entry callbacks make the outbox rows) →
write the new state with ``version + 1`` → append the event (``seq`` = new version,
gapless) → queue the entry effects → COMMIT. No network or file I/O happens inside
that transaction; effects run after commit.

Outside callers fire only the triggers states/ marks public (:meth:`Engine.fire`); a
customer's CSR and a manual CA's certificate come in through :meth:`submit_csr` and
:meth:`record_certificate`, which check them first. Effects, deadlines and the
dispatcher fire the internal triggers with :meth:`apply` inside :meth:`command`.

One Engine may be shared by threads: its store serialises their use of its connection.
"""
from __future__ import annotations

import json
import secrets
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator

from adapters.base import BadInput
from states import LIFECYCLE, Lifecycle, Position
from states.policy import WHOIS_MAIL_ENDED
from workflow import config as config_mod
from workflow.clock import Clock, SystemClock, iso, parse_iso
from workflow.errors import ConcurrencyError, InvalidTransition, NotFound, ValidationError
from workflow.intake import validate_order
from workflow.machine import OrderMachine
from workflow.model import Event, Order
from workflow.store import Store, Transaction, open_store

#: trigger data never written to events (secrets, or bulky and kept elsewhere)
_PRIVATE_DATA = frozenset({"csr", "certificate", "chain", "token", "content", "private_key",
                           "info", "challenges"})
#: trigger data kept in ``orders.data`` (the CA application and its challenges)
_ORDER_DATA = frozenset({"application_id", "challenges"})
#: random bits of an order id after its ``YYYYMMDD-`` prefix, and draws before giving up
_ID_BYTES, _ID_DRAWS = 8, 8


def _position(row: dict) -> Position:
    """The lifecycle's part of an order row."""
    held_seq = None
    if row["held_from"]:
        held_seq = json.loads(row["data"] or "{}").get("held_entered_seq")
    return Position(row["state"], row["version"], row["entered_seq"],
                    parse_iso(row["deadline_at"]), row["deadline_trigger"], row["held_from"],
                    parse_iso(row["held_deadline"]), held_seq, row["reason"])
#: why a trigger on an order ``certflow import`` brought in is refused
IMPORTED_IS_HISTORY = "imported as history from another workspace: nothing acts on it here"


class Engine:
    """Certificate orders as persisted state machines. See DESIGN "Library" contract."""

    def __init__(self, config: config_mod.Config, clock: Clock | None = None,
                 lifecycle: Lifecycle = LIFECYCLE, store: Store | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.lifecycle = lifecycle
        self.machine = OrderMachine(lifecycle, config["deadlines"])
        st = config["store"]
        self.store: Store = store or open_store(st["path"], st["synchronous"],
                                                st["busy_timeout_ms"])
        self._states = {s.name: s for s in lifecycle.states}
        self._rules = {t.name: t for t in lifecycle.trigger_rules}
        self._after_commit: list[Callable[[], None]] = []
        self._adapters = None

    # --- construction -------------------------------------------------------------

    @classmethod
    def from_config(cls, path: str | None = None, clock: Clock | None = None,
                    lifecycle: Lifecycle = LIFECYCLE) -> "Engine":
        return cls(config_mod.load(path or config_mod.default_path()), clock, lifecycle)

    @property
    def keys(self):
        from workflow.keystore import KeyStore
        return KeyStore(self.store, self.adapters, self.config, self.clock)

    @property
    def adapters(self):
        """The outside world, wired from config on first use (workflow.wiring)."""
        if self._adapters is None:
            from workflow.wiring import wire
            self._adapters = wire(self.config, self.clock)
        return self._adapters

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each committed command (the daemon wakes its dispatcher)."""
        self._after_commit.append(callback)

    def close(self) -> None:
        self.store.close()

    def now(self) -> datetime:
        return self.clock.now()

    @contextmanager
    def command(self) -> Iterator[Transaction]:
        """One command's transaction; after it commits, the on_commit callbacks run."""
        with self.store.transaction() as tx:
            yield tx
        for callback in self._after_commit:
            callback()

    # --- commands -----------------------------------------------------------------

    def place(self, *, actor: str = "api", **fields: Any) -> Order:
        """Validate and record a new order; it ends ``ordered`` or, when it cannot be
        applied for (contract inactive, FLEX without fixed IP), ``rejected`` with a reason."""
        now = self.now()
        of = validate_order(fields, self.config.contracts, self.config["validation"]["default"],
                            self.adapters.ca.validation_methods)
        approver = self._approver(of.validation, of.approver, of.common_name, now)
        if of.renewal_of:
            self.get(of.renewal_of)
        stamp = iso(now)
        row = {
            "id": None, "state": self.lifecycle.initial, "version": 0, "entered_seq": 0,
            "common_name": of.common_name, "sans": json.dumps(list(of.sans)), "plan": of.plan,
            "contract": of.contract, "validation": of.validation, "approver": approver,
            "email": of.email, "language": of.language, "organization": of.organization,
            "unit": of.unit, "locality": of.locality, "prefecture": of.prefecture,
            "country": of.country, "renewal_of": of.renewal_of, "csr": None, "reason": None,
            "held_from": None, "held_deadline": None, "deadline_at": None,
            "deadline_trigger": None, "data": "{}", "created_at": stamp, "updated_at": stamp,
        }
        with self.command() as tx:
            if of.renewal_of and tx.has_renewal(of.renewal_of):
                raise ValidationError("renewal_of", f"order {of.renewal_of} already has a renewal",
                                      of.renewal_of)
            for _ in range(_ID_DRAWS):
                row["id"] = f"{now:%Y%m%d}-{secrets.token_hex(_ID_BYTES)}"
                if tx.insert_order(row):
                    break
            else:  # 8 collisions of 64 random bits: the random source is broken
                raise RuntimeError("could not draw a free order id")
            row = self.apply(tx, row, "place", {}, actor, now)
        return self._order(row)

    def _approver(self, validation: str, approver: str | None, cn: str, now: datetime) -> str | None:
        check_approver, default_approver = (self.adapters.check_approver,
                                            self.adapters.default_approver)
        if validation == "email":
            try:
                return check_approver(approver, cn) if approver else default_approver(cn)
            except BadInput as exc:
                raise ValidationError("approver", exc.message, approver) from None
        if validation == "email-whois":
            if self.config["policy"]["publicly_trusted"] and now.date() >= WHOIS_MAIL_ENDED:
                raise ValidationError(
                    "validation", f"validation email-whois refused: CA/B ballot SC-080 ended "
                    f"WHOIS-based mail for publicly-trusted certificates on {WHOIS_MAIL_ENDED} "
                    "(use email with a constructed address, file, http-01 or dns-01)", validation)
            if approver:
                raise ValidationError("approver", "approver comes from WHOIS/RDAP with email-whois", approver)
        elif approver:
            raise ValidationError("approver", "approver is only used with --validation email", approver)
        return None

    def fire(self, order_id: str, trigger: str, *, actor: str = "api",
             expected_version: int | None = None, **data: Any) -> Order:
        """Fire a public ``trigger`` on one order in one transaction; InvalidTransition
        when it is internal, or the lifecycle or a guard refuses, ValidationError for data
        the trigger does not take, ConcurrencyError when ``expected_version`` is stale."""
        rule = self._rules.get(trigger)
        if rule is None or not rule.public:
            current = self.get(order_id)
            why = (f"{trigger} is fired by certflow itself, not from outside (public: "
                   f"{', '.join(self.lifecycle.public_triggers)})" if rule else None)
            raise InvalidTransition(order_id, current.state, trigger, why or
                                    f"unknown trigger {trigger!r}")
        for key in data:
            if key not in rule.data:
                raise ValidationError(key, f"trigger {trigger} takes no {key!r} (it takes: "
                                      f"{', '.join(rule.data) or 'nothing'})", key)
        return self._fire(order_id, trigger, data, actor, expected_version)

    def _fire(self, order_id: str, trigger: str, data: dict, actor: str,
              expected_version: int | None = None) -> Order:
        with self.command() as tx:
            row = self.load(tx, order_id)
            if expected_version is not None and row["version"] != expected_version:
                raise ConcurrencyError(order_id, expected_version, row["version"])
            row = self.apply(tx, row, trigger, data, actor, self.now())
        return self._order(row)

    def submit_csr(self, order_id: str, csr: bytes | str, *, actor: str = "api") -> Order:
        """The customer's CSR (PEM or DER) of an application-only order waiting for it;
        checked (names, key, hash, signature) before anything is stored."""
        order = self.get(order_id)
        waiting = self.lifecycle.customer_csr_state
        if order.state != waiting:
            raise ValidationError("state", f"order {order_id} is {order.state}, not {waiting}",
                                  order.state)
        try:
            pem = self.adapters.keys.check_customer_csr(
                csr, order.names, names_from_application=self.adapters.ca.names_from_application)
        except BadInput as exc:
            raise ValidationError(exc.field or "csr", exc.message) from None
        return self._fire(order_id, self.lifecycle.csr_trigger, {"csr": pem}, actor,
                          order.version)

    def record_certificate(self, order_id: str, certificate: str, chain: str = "", *,
                           actor: str = "api") -> Order:
        """A certificate a CA sent by other means (manual CA), verified against the
        order's key, names and the trust roots before anything is stored. ``certificate``
        may be a bundle: its leaf is kept, the rest is the chain unless ``chain`` is given."""
        try:
            leaf, bundled = self.adapters.split_bundle(certificate)
        except BadInput as exc:
            raise ValidationError(exc.field or "certificate", exc.message) from None
        data = self.verified_certificate(order_id, {"certificate": leaf,
                                                    "chain": chain or bundled})
        return self._fire(order_id, self.lifecycle.certificate_trigger, data, actor)

    def verified_certificate(self, order_id: str, data: dict) -> dict:
        """Check a certificate from any CA against the order's key, names and trust roots."""
        order = self.get(order_id)
        cert, chain = data.get("certificate"), data.get("chain") or ""
        if not cert:
            raise ValidationError("certificate", "no certificate given")
        if not order.csr:
            raise ValidationError("certificate", f"order {order_id} has no CSR yet (state {order.state})")
        try:
            info = self.adapters.verify(cert, chain, csr_pem=order.csr, names=order.names,
                                        now=self.now())
        except BadInput as exc:
            raise ValidationError(exc.field or "certificate", exc.message) from None
        return {**data, "info": info}

    # --- the internal path (effects, deadlines, dispatcher) -------------------------

    def load(self, tx: Transaction, order_id: str) -> dict:
        """The order row inside ``tx``; NotFound when there is none."""
        row = tx.load_order(order_id)
        if row is None:
            raise NotFound("order", order_id)
        return row

    def apply(self, tx: Transaction, row: dict, trigger: str, data: dict,
              actor: str, now: datetime) -> dict:
        """Fire any trigger (public or internal) on ``row`` inside the caller's transaction
        (:meth:`command`); returns the new row. The body of every command."""
        source = row["state"]
        if row["data"] and '"imported"' in row["data"] and "imported" in json.loads(row["data"]):
            raise InvalidTransition(row["id"], source, trigger, IMPORTED_IS_HISTORY)
        contract = self.config.contracts.get(row["contract"])
        pos = _position(row)
        stamp = iso(now)
        move = self.machine.move(row, pos, trigger, contract, now, stamp, data)
        new = move.position
        updates: dict[str, Any] = {
            "state": new.state, "version": new.version, "entered_seq": new.entered_seq,
            "reason": new.reason, "held_from": new.held_from,
            "held_deadline": iso(new.held_deadline) if new.held_deadline else None,
            "deadline_at": iso(new.deadline_at) if new.deadline_at else None,
            "deadline_trigger": new.deadline_trigger, "updated_at": stamp}
        if data.get("csr"):
            updates["csr"] = data["csr"]
        if data.get("approver"):
            updates["approver"] = data["approver"]
        if new.held_entered_seq != pos.held_entered_seq or not _ORDER_DATA.isdisjoint(data):
            order_data = json.loads(row["data"] or "{}")
            order_data.update((k, data[k]) for k in _ORDER_DATA if k in data)
            if new.held_entered_seq is not None:
                order_data["held_entered_seq"] = new.held_entered_seq
            else:
                order_data.pop("held_entered_seq", None)
            updates["data"] = json.dumps(order_data, separators=(",", ":"))
        found = tx.update_order(row["id"], row["version"], updates)
        if found != row["version"]:
            raise ConcurrencyError(row["id"], row["version"], found)
        if "info" in data:
            info = data["info"]
            tx.put_certificate({
                "order_id": row["id"], "serial": info.serial, "not_before": iso(info.not_before),
                "not_after": iso(info.not_after), "sha256": info.sha256,
                "names": json.dumps(list(info.names)), "cert_pem": data["certificate"],
                "chain_pem": data.get("chain") or "", "issued_at": stamp})
            data = {**data, "serial": info.serial, "sha256": info.sha256}
        event_data = {k: v for k, v in data.items() if k not in _PRIVATE_DATA and v is not None}
        if new.reason and new.state != source and self._states[new.state].records_reason:
            event_data.setdefault("reason", new.reason)
        tx.append_event({
            "order_id": row["id"], "seq": new.version, "at": stamp, "trigger": trigger,
            "source": source, "dest": new.state, "actor": actor,
            "data": json.dumps(event_data, ensure_ascii=False, separators=(",", ":"))
            if event_data else None})
        if move.effects:
            tx.queue_effects(move.effects, stamp)
        row.update(updates)
        return row

    def poll_now(self, application_id: str) -> str | None:
        """The CA has news for this application (an approval): look at it on the next
        dispatch instead of at the next poll interval. Returns the order id."""
        with self.command() as tx:
            order_id = tx.order_for_application(application_id)
            if order_id is not None:
                tx.poll_soon(order_id, "poll_ca", iso(self.now()))
        return order_id

    def schedule_notice(self, order_id: str, template: str, key: str, at: datetime,
                        to: str | None = None, bound: bool = False) -> None:
        """Queue a message outside a transition (renewal reminders, notices to the
        operator). ``key`` makes it happen once; ``bound`` drops it if the order moves on."""
        param = f"{template}@{to}" if to else template
        with self.command() as tx:
            row = self.load(tx, order_id)
            tx.queue_notice((order_id, row["entered_seq"], row["state"], "notify", param, key,
                             int(bound), iso(at)), iso(self.now()))

    # --- queries ------------------------------------------------------------------

    def _order(self, row: dict) -> Order:
        if self._states[row["state"]].carries_certificate:
            return self.get(row["id"])
        return Order.from_record(row)  # no certificate in this state

    def get(self, order_id: str) -> Order:
        rec = self.store.order(order_id)
        if rec is None:
            raise NotFound("order", order_id)
        return Order.from_record(rec)

    def list(self, state: str | None = None) -> list[Order]:
        if state is not None and state not in self._states:
            raise ValidationError("state", f"state {state!r} unknown: use one of "
                                  f"{', '.join(self.lifecycle.state_names)}", state)
        return [Order.from_record(r) for r in self.store.orders(state)]

    def history(self, order_id: str) -> list[Event]:
        self.get(order_id)
        return [Event.from_record(r) for r in self.store.events(order_id)]

    # --- the operator's window (workflow.operations) -----------------------------------

    def find(self, states=None, contract=None, cn=None, email=None, expiring_within=None,
             renewal_of=None, limit=None, after=None) -> Iterator[Order]:
        from workflow import operations
        return operations.find(self, states, contract, cn, email, expiring_within, renewal_of,
                               limit, after)

    def pending_effects(self, order_id: str) -> list[dict]:
        from workflow import operations
        return operations.pending_effects(self, order_id)

    def explain(self, order_id: str) -> dict:
        from workflow import operations
        return operations.explain(self, order_id)

    def retry(self, order_id: str, actor: str = "api") -> int:
        from workflow import operations
        return operations.retry(self, order_id, actor)

    def resend_approval(self, order_id: str, actor: str = "api") -> str:
        from workflow import operations
        return operations.resend_approval(self, order_id, actor)

    def set_approver(self, order_id: str, address: str, actor: str = "api") -> Order:
        from workflow import operations
        return operations.set_approver(self, order_id, address, actor)

    def renew_now(self, order_id: str, actor: str = "api") -> str:
        from workflow import operations
        return operations.renew_now(self, order_id, actor)

    def revoke(self, order_id: str, reason: str, actor: str = "api") -> Order:
        from workflow import operations
        return operations.revoke(self, order_id, reason, actor)

    def failed_notifications(self) -> list[dict]:
        from workflow import operations
        return operations.failed_notifications(self)

    def retry_notifications(self, ids=None) -> int:
        from workflow import operations
        return operations.retry_notifications(self, ids)

    def ack_notifications(self, ids=None) -> int:
        from workflow import operations
        return operations.ack_notifications(self, ids)

    def summary(self) -> dict:
        from workflow import operations
        return operations.summary(self)
