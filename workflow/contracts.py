"""The contract book: hosting contracts as data in the store (``engine.contracts``).

A contract row holds the fields as put (``plan, status, fixed_ip, plesk, webroot,
servers, reload, verify``); reading one checks it exactly as a ``[contracts."ID"]`` table
of config.toml is checked and adds its install ``targets`` (workflow.config.check_contract),
so the engine, the effects and the installer see one contract shape whatever its source.

config.toml's ``[contracts."ID"]`` tables are seed data, read as a fallback: a contract
in the store wins; one only in config.toml is read from there. Nothing is written at
start (read-only commands stay read-only); the first ``put`` of a seeded contract copies
it into the store, with the config's values as the change's "before".

Every change is one row of ``contract_changes`` (who, when, before, after), written in
the transaction that changes the contract. A contract whose status stops being
``active`` holds its orders not yet with the CA (``BEFORE_SUBMISSION``), naming the
contract in the reason; ``order resume`` continues them once it is active again.
Lookups are primary-key reads: no cache, so a change counts at once in every process.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator

from states.lifecycle import BEFORE_SUBMISSION
from workflow.clock import iso
from workflow.config import CONTRACT_SETTINGS, check_contract
from workflow.errors import InvalidTransition, NotFound, ValidationError

#: the fields a contract is put with, in the order tables show them
FIELDS: tuple[str, ...] = tuple(s.key for s in CONTRACT_SETTINGS)


def as_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A checked contract's fields as stored (the ``before``/``after`` of a change);
    a field without a value is left out (it takes the default when read)."""
    return {k: record[k] for k in FIELDS if record.get(k) is not None}


class ContractBook:
    """``get``, ``list``, ``put``, ``history`` of hosting contracts; a read-only mapping
    (``id in book``, ``book[id]``, ``book.get(id)``) for intake."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.config = engine.config

    # --- reads --------------------------------------------------------------------

    def _record(self, row: dict) -> dict[str, Any]:
        rec = check_contract(self.config, row["id"], json.loads(row["body"]))
        return {**rec, "source": "store", "updated_at": row["updated_at"],
                "updated_by": row["updated_by"]}

    def _seed(self, contract_id: str) -> dict[str, Any] | None:
        seed = self.config.contracts.get(contract_id)
        return {**seed, "source": "config", "updated_at": None, "updated_by": None} \
            if seed else None

    def get(self, contract_id: str, default: Any = None) -> dict[str, Any] | None:
        """The contract (store first, then config.toml's seed), or ``default``."""
        row = self.engine.store.contract(contract_id)
        found = self._record(row) if row else self._seed(contract_id)
        return default if found is None else found

    def __getitem__(self, contract_id: str) -> dict[str, Any]:
        found = self.get(contract_id)
        if found is None:
            raise KeyError(contract_id)
        return found

    def __contains__(self, contract_id: object) -> bool:
        return isinstance(contract_id, str) and self.get(contract_id) is not None

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every contract (store and seeds), by id; only those with ``status`` if given."""
        if status is not None and status not in _STATUSES:
            raise ValidationError("status", f"status {status!r} unknown: use one of "
                                  f"{', '.join(_STATUSES)}", status)
        stored = {r["id"]: self._record(r) for r in self.engine.store.contracts(status)}
        seeds = [cid for cid in self.config.contracts if cid not in stored]
        in_store = {cid for cid in seeds if self.engine.store.contract(cid)} if status else set()
        for cid in seeds:
            if cid not in in_store:  # a seed the store overrides (with another status) is not it
                seed = self._seed(cid)
                if status is None or seed["status"] == status:
                    stored[cid] = seed
        return [stored[k] for k in sorted(stored)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.list())

    def history(self, contract_id: str) -> list[dict[str, Any]]:
        """Every recorded change, oldest first: ``{at, actor, before, after}``."""
        if contract_id not in self:
            raise NotFound("contract", contract_id)
        return [{"at": r["at"], "actor": r["actor"],
                 "before": json.loads(r["before"]) if r["before"] else None,
                 "after": json.loads(r["after"])}
                for r in self.engine.store.contract_changes(contract_id)]

    # --- writes -------------------------------------------------------------------

    def put(self, contract_id: str, *, actor: str = "api", **fields: Any) -> dict[str, Any]:
        """Create a contract or change the fields given (the others keep their value;
        a new contract needs ``plan``). Checked like config.toml; ValidationError naming
        the field, nothing written. Returns the contract as :meth:`get` reads it."""
        engine = self.engine
        now = engine.now()
        with engine.command() as tx:
            self.put_in(tx, contract_id, fields, actor, now)
        return self.get(contract_id)

    def put_many(self, items: list[tuple[str, str, dict[str, Any]]], *, actor: str) -> int:
        """``(where, id, fields)`` items in one transaction, all or nothing; a refusal's
        message starts with its ``where`` (``FILE:LINE``). Returns how many changed."""
        engine = self.engine
        now = engine.now()
        changed = 0
        with engine.command() as tx:
            for where, cid, fields in items:
                try:
                    changed += self.put_in(tx, cid, fields, actor, now)
                except ValidationError as exc:
                    raise ValidationError(exc.field, f"{where}: {exc.message}", exc.value) from None
        return changed

    def put_in(self, tx, contract_id: str, fields: dict[str, Any], actor: str,
               now: datetime) -> bool:
        """The body of :meth:`put` inside the caller's transaction; False when nothing
        changed (nothing is recorded then)."""
        for key in fields:
            if key not in FIELDS:
                raise ValidationError(key, f"unknown contract field {key!r} (fields: "
                                      f"{', '.join(FIELDS)})", key)
        row = tx.load_contract(contract_id)
        if row is not None:
            before = json.loads(row["body"])
        else:
            seed = self.config.contracts.get(contract_id)
            before = as_fields(seed) if seed else None
        body = {**(before or {}), **fields}
        for key in [k for k, v in body.items() if v is None]:
            del body[key]  # None: back to the default
        after = as_fields(check_contract(self.config, contract_id, body))
        if after == before and row is not None:
            return False
        stamp = iso(now)
        tx.put_contracts([{"id": contract_id, "plan": after["plan"], "status": after["status"],
                           "body": _dumps(after), "updated_at": stamp, "updated_by": actor}])
        tx.append_contract_changes([{
            "contract_id": contract_id, "at": stamp, "actor": actor,
            "before": _dumps(before) if before is not None else None, "after": _dumps(after)}])
        was = (before or {}).get("status", "active")
        if after["status"] != "active" and was != after["status"]:
            self._hold_orders(tx, contract_id, after["status"], actor, now)
        return True

    def _hold_orders(self, tx, contract_id: str, status: str, actor: str, now: datetime) -> None:
        """Orders of the contract not yet with the CA wait on hold, the contract named."""
        engine = self.engine
        reason = f"hosting contract {contract_id} is {status}"
        for order in tx.orders_of_contract(contract_id, BEFORE_SUBMISSION):
            try:
                engine.apply(tx, order, engine.lifecycle.hold_trigger, {"reason": reason},
                             f"contract:{actor}", now)
            except InvalidTransition:
                continue  # imported history, or a lifecycle that does not hold it here


_STATUSES = next(s.choices for s in CONTRACT_SETTINGS if s.key == "status")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
