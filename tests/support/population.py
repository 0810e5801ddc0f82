"""A mixed population of orders, made by the engine and the daemon's one-pass runner on
the embedded defaults (local CA, file validation, mail to a folder), for replay and
export/import tests (fixture ``population``).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from support import mailfolder
from support.helpers import ORDER
from workflow import config as config_mod
from workflow.effects.daemon import Daemon
from adapters.abilities import approval_tokens


@dataclass
class Population:
    config: Path                       # the workspace's config.toml
    db: Path                           # its SQLite store
    url: str | None = None             # or its PostgreSQL database
    installed: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return self.installed + self.expired + self.cancelled + self.rejected + self.in_flight

    def sql(self, query: str, args: tuple = ()) -> list[tuple]:
        """Read or write the store directly, as an operator with sqlite3 (psql) would."""
        if self.url:
            from support.postgres import sql
            return sql(self.url, query, args)
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(query, args).fetchall()
        conn.close()
        return rows

    def approval_tokens(self) -> list[str]:
        """Tokens from the approval mails in the mail folder (?token=...)."""
        tokens: set[str] = set()
        for message in mailfolder.messages(self.config):
            tokens.update(approval_tokens(mailfolder.body(message)))
        return sorted(tokens)


def build_population(engine, clock) -> Population:
    """3 installed, 1 expired (10-day approval), 1 customer-cancelled, 1 rejected
    (expired contract), 1 in flight (ordered, not paid)."""
    pop = Population(config=Path(engine.config.path), db=Path(engine.store.path),
                     url=engine.config["store"].get("url"))
    daemon = Daemon(engine)

    for i in range(3):
        o = engine.place(**{**ORDER, "common_name": f"www.shop{i}.example.jp"})
        engine.fire(o.id, "pay")
        pop.installed.append(o.id)
    expiring = engine.place(**{**ORDER, "common_name": "www.slow.example.jp", "validation": "email"})
    engine.fire(expiring.id, "pay")
    pop.expired.append(expiring.id)
    daemon.run_once()
    assert [engine.get(i).state for i in pop.installed] == ["installed"] * 3
    assert engine.get(expiring.id).state == "awaiting_approval"

    clock.advance(timedelta(days=10, hours=1))
    daemon.run_once()
    assert engine.get(expiring.id).state == "cancelled"

    cancelled = engine.place(**{**ORDER, "common_name": "www.changed-mind.example.jp"})
    engine.fire(cancelled.id, "pay")
    engine.fire(cancelled.id, "cancel", reason="customer changed plans")
    pop.cancelled.append(cancelled.id)
    rejected = engine.place(**{**ORDER, "common_name": "www.old.example.jp", "contract": "C-9001"})
    assert rejected.state == "rejected"
    pop.rejected.append(rejected.id)
    waiting = engine.place(**{**ORDER, "common_name": "www.later.example.jp"})
    pop.in_flight.append(waiting.id)
    daemon.run_once()
    assert engine.get(cancelled.id).state == "cancelled"
    assert engine.get(waiting.id).state == "ordered"
    return pop


@pytest.fixture
def population(engine, clock, workspace) -> Population:
    pop = build_population(engine, clock)
    assert pop.config == workspace
    assert pop.url or pop.db == Path(config_mod.load(workspace)["store"]["path"])
    return pop
