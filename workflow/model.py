"""Read-side values: an order as callers see it, and one event of its history."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


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
        out = asdict(self)
        out["sans"] = list(self.sans)
        out.pop("data")
        out["application_id"] = self.data.get("application_id")
        out["imported"] = "imported" in self.data  # history from another workspace: inert here
        return out

    @classmethod
    def from_row(cls, row: Any, cert: Any = None) -> "Order":
        data = json.loads(row["data"] or "{}")
        certificate = None
        if cert is not None and cert["serial"]:
            certificate = Certificate(cert["serial"], cert["not_before"], cert["not_after"], cert["sha256"])
        return cls(
            id=row["id"], state=row["state"], version=row["version"],
            common_name=row["common_name"], sans=tuple(json.loads(row["sans"] or "[]")),
            plan=row["plan"], contract=row["contract"], validation=row["validation"],
            approver=row["approver"], email=row["email"], language=row["language"],
            organization=row["organization"], unit=row["unit"], locality=row["locality"],
            prefecture=row["prefecture"], country=row["country"], deadline_at=row["deadline_at"],
            reason=row["reason"], renewal_of=row["renewal_of"], csr=row["csr"],
            held_from=row["held_from"], created_at=row["created_at"], updated_at=row["updated_at"],
            certificate=certificate, data=data,
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

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "trigger": self.trigger, "source": self.source,
                "dest": self.dest, "actor": self.actor, "data": self.data}
