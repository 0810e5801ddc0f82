"""Adapters come from a registry of kinds (issue 15 item 4): a new CA is one module and
one registration line; nothing else compares kind names; abilities are Protocols."""
from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from adapters import registry
from adapters.abilities import Checkable, KeyMaker, PublishesRoot, RenewalAdvisor, TakesApprovals
from adapters.base import Pending, Submission
from adapters.settings import AdapterKind, Setting
from support.helpers import configure
from workflow import config as config_mod
from workflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


class TinyCA:
    def __init__(self, queue: str) -> None:
        self.queue = queue

    def submit(self, application):
        return Submission(application_id=f"tiny:{application.idempotency_key}")

    def poll(self, application_id, application):
        return Pending(5.0, "tiny CA thinks")

    def cancel(self, application_id):
        return None


@pytest.fixture
def tiny_ca(monkeypatch):
    """A CA kind that exists only in this test: one module with KIND, one registry line."""
    module = types.ModuleType("tiny_ca_for_test")
    module.KIND = AdapterKind("ca", "tiny", "a CA for this test", (
        Setting("queue", "string", "default", "Which queue applications go to.",
                choices=("default", "express")),
    ), lambda settings, wiring: TinyCA(settings["queue"]))
    monkeypatch.setitem(sys.modules, "tiny_ca_for_test", module)
    monkeypatch.setitem(registry.KINDS, "ca", {**registry.KINDS["ca"], "tiny": "tiny_ca_for_test"})
    return module


def test_a_new_ca_is_one_module_and_one_registration(workspace, tiny_ca):
    from adapters.ca import SECTION
    from workflow.clock import SystemClock
    from workflow.ops.docs_gen import config_markdown
    from workflow.wiring import certificate_authority
    configure(workspace, {"ca.kind": "tiny", "ca.queue": "express"})
    config = config_mod.load(workspace)
    ca = certificate_authority(config, None, SystemClock(), None)
    assert isinstance(ca, TinyCA) and ca.queue == "express"
    assert "| `queue` | string |" in config_markdown()
    configure(workspace, {"ca.queue": "slow"})
    with pytest.raises(ConfigError) as refused:
        config_mod.load(workspace)
    assert refused.value.field == "ca.queue"
    assert SECTION.settings[0].key == "kind"


def test_an_unknown_kind_is_refused_naming_the_key(workspace):
    configure(workspace, {"ca.kind": "tiny"})
    with pytest.raises(ConfigError) as refused:
        config_mod.load(workspace)
    assert refused.value.field == "ca.kind" and "local, acme, manual" in refused.value.message


def test_nothing_outside_the_adapters_compares_kind_names():
    names = {kind for section in registry.KINDS.values() for kind in section}
    found = []
    for path in ROOT.joinpath("workflow").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                for side in (node.left, *node.comparators):
                    if isinstance(side, ast.Constant) and side.value in names:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id == "hasattr":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} hasattr")
    assert found == []


def test_abilities_are_declared_by_protocols(tmp_path):
    from adapters.ca.acme import AcmeCA
    from adapters.ca.local import LocalCA
    from adapters.ca.manual import ManualCA
    from adapters.crypto.keymaker import CryptoKeyMaker
    from adapters.crypto.keys import KeyVault
    local = LocalCA(str(tmp_path / "ca"), KeyVault(KeyVault.new_master_key()), lambda: None)
    acme = AcmeCA("http://127.0.0.1:9/dir", str(tmp_path / "acme"), bytes, bytes, lambda: None)
    assert isinstance(local, (Checkable)) and isinstance(local, PublishesRoot) \
        and isinstance(local, TakesApprovals) and not isinstance(local, RenewalAdvisor)
    assert isinstance(acme, RenewalAdvisor) and isinstance(acme, Checkable) \
        and not isinstance(acme, PublishesRoot)
    assert not isinstance(ManualCA(), (Checkable, RenewalAdvisor, PublishesRoot))
    assert isinstance(CryptoKeyMaker(), KeyMaker)
