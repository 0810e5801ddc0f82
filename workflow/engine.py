"""The engine: every command is one ``BEGIN IMMEDIATE`` transaction.

load the order row → fire the trigger on the shared Machine (guards decide) → write the
new state with ``version + 1`` → append the event (``seq`` = new version, gapless) →
queue the entry effects in the outbox → set or clear the deadline → COMMIT.
No network or file I/O happens inside that transaction; effects run after commit.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import datetime, timedelta
from typing import Any, Callable

from states import GUARDS, LIFECYCLE, GuardContext, Lifecycle
from states.policy import WHOIS_MAIL_ENDED
from workflow import config as config_mod
from workflow.clock import Clock, SystemClock, iso, parse_iso
from workflow.errors import ConcurrencyError, InvalidTransition, NotFound, ValidationError
from workflow.intake import validate_order
from workflow.machine import SharedMachine
from workflow.model import Event, Order
from workflow.store.sqlite import Store

#: trigger data never written to events (secrets, or bulky and kept elsewhere)
_PRIVATE_DATA = frozenset({"csr", "certificate", "chain", "token", "content", "private_key",
                           "info", "challenges"})
#: states in which an order cannot have a certificate yet
_BEFORE_CERTIFICATE = frozenset({"new", "ordered", "paid", "awaiting_csr", "submitted",
                                 "awaiting_approval"})
#: why a trigger on an order ``certflow import`` brought in is refused
IMPORTED_IS_HISTORY = "imported as history from another workspace: nothing acts on it here"
_ORDER_COLUMNS = ("id, state, version, entered_seq, common_name, sans, plan, contract, validation, "
                  "approver, email, language, organization, unit, locality, prefecture, country, "
                  "renewal_of, csr, reason, held_from, held_deadline, deadline_at, deadline_trigger, "
                  "data, created_at, updated_at")


class Engine:
    """Certificate orders as persisted state machines. See DESIGN "Library" contract."""

    def __init__(self, config: config_mod.Config, clock: Clock | None = None,
                 lifecycle: Lifecycle = LIFECYCLE) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.lifecycle = lifecycle
        self.machine = SharedMachine(lifecycle)
        st = config["store"]
        self.store = Store(st["path"], st["synchronous"], st["busy_timeout_ms"])
        self._states = {s.name: s for s in lifecycle.states}
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
        return KeyStore(self)

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

    # --- commands -----------------------------------------------------------------

    def place(self, *, actor: str = "api", **fields: Any) -> Order:
        """Validate and record a new order; it ends ``ordered`` or, when it cannot be
        applied for (contract inactive, FLEX without fixed IP), ``rejected`` with a reason."""
        now = self.now()
        of = validate_order(fields, self.config.contracts, self.config["validation"]["default"])
        approver = self._approver(of.validation, of.approver, of.common_name, now)
        if of.renewal_of:
            self.get(of.renewal_of)
        order_id = f"{now:%Y%m%d}-{secrets.token_hex(4)}"
        row = {
            "id": order_id, "state": self.lifecycle.initial, "version": 0, "entered_seq": 0,
            "common_name": of.common_name, "sans": json.dumps(list(of.sans)), "plan": of.plan,
            "contract": of.contract, "validation": of.validation, "approver": approver,
            "email": of.email, "language": of.language, "organization": of.organization,
            "unit": of.unit, "locality": of.locality, "prefecture": of.prefecture,
            "country": of.country, "renewal_of": of.renewal_of, "csr": None, "reason": None,
            "held_from": None, "held_deadline": None, "deadline_at": None,
            "deadline_trigger": None, "data": "{}", "created_at": iso(now), "updated_at": iso(now),
        }
        with self.store.immediate() as conn:
            if of.renewal_of and conn.execute("SELECT 1 FROM orders WHERE renewal_of = ?",
                                              (of.renewal_of,)).fetchone():
                raise ValidationError("renewal_of", f"order {of.renewal_of} already has a renewal",
                                      of.renewal_of)
            conn.execute(f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES "
                         f"({', '.join('?' * len(row))})", tuple(row.values()))
            row = self.apply(conn, row, "place", {}, actor, now)
        self._committed()
        return Order.from_row(row, None)

    def _approver(self, validation: str, approver: str | None, cn: str, now: datetime) -> str | None:
        from adapters.contacts.approvers import check_approver, default_approver  # pure BR 3.2.2.4.4 rule
        if validation == "email":
            try:
                return check_approver(approver, cn) if approver else default_approver(cn)
            except ValueError as exc:
                raise ValidationError("approver", str(exc), approver) from None
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
        """Fire ``trigger`` on one order in one transaction; InvalidTransition when the
        lifecycle or a guard refuses, ConcurrencyError when ``expected_version`` is stale."""
        if trigger == "issue" and "info" not in data:
            data = self.verified_certificate(order_id, data)
        with self.store.immediate() as conn:
            row = self._load(conn, order_id)
            if expected_version is not None and row["version"] != expected_version:
                raise ConcurrencyError(order_id, expected_version, row["version"])
            row = self.apply(conn, row, trigger, data, actor, self.now())
            order = self._order(conn, row)
        self._committed()
        return order

    def _order(self, conn: sqlite3.Connection, row: dict) -> Order:
        cert = None
        if row["state"] not in _BEFORE_CERTIFICATE:
            cert = conn.execute("SELECT serial, not_before, not_after, sha256 FROM certificates "
                                "WHERE order_id = ?", (row["id"],)).fetchone()
        return Order.from_row(row, cert)

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
        except ValueError as exc:  # adapters.base.BadInput
            raise ValidationError(getattr(exc, "field", "certificate"), str(exc)) from None
        return {**data, "info": info}

    def _committed(self) -> None:
        for callback in self._after_commit:
            callback()

    def _load(self, conn: sqlite3.Connection, order_id: str) -> dict:
        row = conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            raise NotFound("order", order_id)
        return dict(row)

    def apply(self, conn: sqlite3.Connection, row: dict, trigger: str, data: dict,
              actor: str, now: datetime) -> dict:
        """The body of every command, inside the caller's transaction. Returns the new row."""
        source = row["state"]
        if row["data"] and '"imported"' in row["data"] and "imported" in json.loads(row["data"]):
            raise InvalidTransition(row["id"], source, trigger, IMPORTED_IS_HISTORY)
        contract = self.config.contracts.get(row["contract"])
        ctx = GuardContext(row, contract, now, data)
        dest, refusal = self.machine.resolve(row["id"], source, trigger, ctx)
        seq = row["version"] + 1
        state = self._states[dest]
        stamp = iso(now)
        updates: dict[str, Any] = {"state": dest, "version": seq, "updated_at": stamp}
        reason = data.get("reason") or (refusal if dest == "rejected" else None)
        if dest in ("rejected", "cancelled", "on_hold"):
            updates["reason"] = reason or {"expire": "approval not given within the deadline",
                                           "cancel": "cancelled"}.get(trigger, trigger)
        elif trigger == "resume":
            updates["reason"] = None
        # order data changes only on these triggers: skip the JSON round trip otherwise
        touches_data = trigger in ("ca_accept", "resume") or dest == "on_hold"
        order_data = json.loads(row["data"] or "{}") if touches_data else None
        if trigger == "submit":
            updates["csr"] = data.get("csr") or row["csr"]
        elif trigger == "ca_accept":
            for key in ("application_id", "challenges"):
                if key in data:
                    order_data[key] = data[key]
            if data.get("approver"):
                updates["approver"] = data["approver"]
        elif trigger == "issue":
            info = data["info"]
            conn.execute("INSERT OR REPLACE INTO certificates VALUES (?,?,?,?,?,?,?,?,?)", (
                row["id"], info.serial, iso(info.not_before), iso(info.not_after), info.sha256,
                json.dumps(list(info.names)), data["certificate"], data.get("chain") or "", stamp))
            data = {**data, "serial": info.serial, "sha256": info.sha256}
        if dest == "on_hold":
            updates["held_from"], updates["held_deadline"] = source, row["deadline_at"]
        # deadline: entering a state with one sets it; resume restores the held one
        entered_seq = seq
        if trigger == "resume":
            entered_seq = order_data.pop("held_entered_seq", seq)
            updates["held_from"] = updates["held_deadline"] = None
            deadline = row["held_deadline"] if state.deadline else None
        elif state.deadline:
            deadline = iso(now + state.deadline[0])
        else:
            deadline = None
        if dest == "on_hold":
            order_data["held_entered_seq"] = row["entered_seq"]
        updates["deadline_at"] = deadline
        updates["deadline_trigger"] = state.deadline[1] if (state.deadline and deadline) else None
        updates["entered_seq"] = entered_seq
        if touches_data:
            updates["data"] = json.dumps(order_data, separators=(",", ":"))
        sets = ", ".join(f"{k} = ?" for k in updates)
        cur = conn.execute(f"UPDATE orders SET {sets} WHERE id = ? AND version = ?",
                           (*updates.values(), row["id"], row["version"]))
        if cur.rowcount != 1:
            found = conn.execute("SELECT version FROM orders WHERE id = ?", (row["id"],)).fetchone()
            raise ConcurrencyError(row["id"], row["version"], found[0] if found else None)
        event_data = {k: v for k, v in data.items() if k not in _PRIVATE_DATA and v is not None}
        if "reason" in updates and updates["reason"] and dest != source:
            event_data.setdefault("reason", updates["reason"])
        conn.execute("INSERT INTO events (order_id, seq, at, trigger, source, dest, actor, data) "
                     "VALUES (?,?,?,?,?,?,?,?)",
                     (row["id"], seq, stamp, trigger, source, dest, actor,
                      json.dumps(event_data, ensure_ascii=False, separators=(",", ":"))
                      if event_data else None))
        row.update(updates)
        self._queue_effects(conn, row, state, contract, entered_seq, now, stamp,
                            resumed=(trigger == "resume"))
        return row

    def _queue_effects(self, conn: sqlite3.Connection, row: dict, state, contract,
                       seq: int, now: datetime, stamp: str, resumed: bool) -> None:
        rows = []
        for effect in state.effects:
            if resumed and not effect.bound:
                continue  # resume re-queues the work, it does not repeat the mail
            if effect.when and self._refuses(effect.when, row, contract, now):
                continue
            suffix = f":{effect.param}" if effect.param else ""
            rows.append((row["id"], seq, state.name, effect.kind, effect.param,
                         f"{row['id']}:{seq}:{effect.kind}{suffix}", int(effect.bound), stamp))
        if state.name == "awaiting_approval" and row["validation"] in ("email", "email-whois") \
                and row["deadline_at"] and not resumed:
            deadline = parse_iso(row["deadline_at"])
            for days in self.config["deadlines"]["approval_reminder_days"]:
                at = deadline - timedelta(days=days)
                if at > now:
                    rows.append((row["id"], seq, state.name, "notify", "approval_reminder",
                                 f"{row['id']}:{seq}:notify:approval_reminder:{days}d", 1, iso(at)))
        if rows:
            conn.executemany(
                "INSERT INTO outbox (order_id, seq, state, effect, param, idem_key, bound, status, "
                "attempts, next_at, created_at) VALUES (?,?,?,?,?,?,?,'pending',0,?,?) "
                "ON CONFLICT(idem_key) DO UPDATE SET status='pending', attempts=0, "
                "next_at=excluded.next_at, lease_owner=NULL, lease_until=NULL",
                [(*r, stamp) for r in rows])

    def poll_now(self, application_id: str) -> str | None:
        """The CA has news for this application (an approval): look at it on the next
        dispatch instead of at the next poll interval. Returns the order id."""
        with self.store.immediate() as conn:
            row = conn.execute("SELECT id FROM orders WHERE json_extract(data, '$.application_id') = ?",
                               (application_id,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE outbox SET next_at = ? WHERE order_id = ? AND effect = 'poll_ca' "
                         "AND status = 'pending'", (iso(self.now()), row[0]))
        self._committed()
        return row[0]

    def schedule_notice(self, order_id: str, template: str, key: str, at: datetime,
                        to: str | None = None, bound: bool = False) -> None:
        """Queue a message outside a transition (renewal reminders, notices to the
        operator). ``key`` makes it happen once; ``bound`` drops it if the order moves on."""
        param = f"{template}@{to}" if to else template
        with self.store.immediate() as conn:
            row = self._load(conn, order_id)
            conn.execute(
                "INSERT OR IGNORE INTO outbox (order_id, seq, state, effect, param, idem_key, bound, "
                "status, attempts, next_at, created_at) VALUES (?,?,?,?,?,?,?,'pending',0,?,?)",
                (order_id, row["entered_seq"], row["state"], "notify", param, key, int(bound),
                 iso(at), iso(self.now())))
        self._committed()

    def _refuses(self, guard: str, row: dict, contract, now: datetime) -> bool:
        return GUARDS[guard](GuardContext(row, contract, now)) is not None

    # --- queries ------------------------------------------------------------------

    def get(self, order_id: str) -> Order:
        conn = self.store.conn
        row = conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            raise NotFound("order", order_id)
        cert = conn.execute("SELECT * FROM certificates WHERE order_id = ?", (order_id,)).fetchone()
        return Order.from_row(row, cert)

    def list(self, state: str | None = None) -> list[Order]:
        if state is not None and state not in self._states:
            raise ValidationError("state", f"state {state!r} unknown: use one of "
                                  f"{', '.join(self.lifecycle.state_names)}", state)
        sql = (f"SELECT {', '.join('o.' + c.strip() for c in _ORDER_COLUMNS.split(','))}, "
               "c.serial, c.not_before, c.not_after, c.sha256 FROM orders o "
               "LEFT JOIN certificates c ON c.order_id = o.id")
        args: tuple = ()
        if state:
            sql += " WHERE o.state = ?"
            args = (state,)
        sql += " ORDER BY o.created_at, o.rowid"
        return [Order.from_row(r, r) for r in self.store.conn.execute(sql, args)]

    def history(self, order_id: str) -> list[Event]:
        self.get(order_id)
        return [Event(r["order_id"], r["seq"], r["at"], r["trigger"], r["source"], r["dest"],
                      r["actor"], json.loads(r["data"]) if r["data"] else {})
                for r in self.store.conn.execute(
                    "SELECT * FROM events WHERE order_id = ? ORDER BY seq", (order_id,))]
