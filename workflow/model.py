"""Read-side values: an order as callers see it, and one event of its history."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Certificate:
    serial: str
    not_before: str
    not_after: str
    sha256: str


@dataclass(frozen=True)
class Order:
    id: str
    state: str
    version: int
    common_name: str
    sans: tuple[str, ...]
    plan: str
    contract: str
    validation: str
    approver: str | None
    email: str
    language: str
    organization: str
    unit: str | None
    locality: str
    prefecture: str
    country: str
    deadline_at: str | None
    reason: str | None
    renewal_of: str | None
    csr: str | None
    held_from: str | None
    created_at: str
    updated_at: str
    certificate: Certificate | None = None
    data: dict = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.common_name, *self.sans)

    def to_dict(self) -> dict[str, Any]:
        # shallow, field by field: asdict() deep-copies ``data`` only to drop it, which
        # dominates a streamed million-row listing
        out = {name: value for name, value in vars(self).items() if name != "data"}
        cert = self.certificate
        out["certificate"] = None if cert is None else {
            "serial": cert.serial, "not_before": cert.not_before, "not_after": cert.not_after,
            "sha256": cert.sha256}
        out["sans"] = list(self.sans)
        out["application_id"] = self.data.get("application_id")
        out["imported"] = "imported" in self.data  # history from another workspace: inert here
        return out

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> "Order":
        """The one way an Order is built: from a store record (the ``orders`` row, its
        certificate summary under ``certificate``: a dict or None)."""
        cert = rec.get("certificate")
        return cls(
            id=rec["id"], state=rec["state"], version=rec["version"],
            common_name=rec["common_name"], sans=tuple(json.loads(rec["sans"] or "[]")),
            plan=rec["plan"], contract=rec["contract"], validation=rec["validation"],
            approver=rec["approver"], email=rec["email"], language=rec["language"],
            organization=rec["organization"], unit=rec["unit"], locality=rec["locality"],
            prefecture=rec["prefecture"], country=rec["country"], deadline_at=rec["deadline_at"],
            reason=rec["reason"], renewal_of=rec["renewal_of"], csr=rec["csr"],
            held_from=rec["held_from"], created_at=rec["created_at"], updated_at=rec["updated_at"],
            certificate=Certificate(cert["serial"], cert["not_before"], cert["not_after"],
                                    cert["sha256"]) if cert else None,
            data=json.loads(rec["data"] or "{}"),
        )


@dataclass(frozen=True)
class Event:
    order_id: str
    seq: int
    at: str
    trigger: str
    source: str
    dest: str
    actor: str
    data: dict = field(default_factory=dict)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> "Event":
        return cls(rec["order_id"], rec["seq"], rec["at"], rec["trigger"], rec["source"],
                   rec["dest"], rec["actor"], json.loads(rec["data"]) if rec["data"] else {})

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "trigger": self.trigger, "source": self.source,
                "dest": self.dest, "actor": self.actor, "data": self.data}
