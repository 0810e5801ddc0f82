"""The adapter registry: for each section with kinds, kind → the module that declares it.

A module registered here defines ``KIND``, an :class:`adapters.settings.AdapterKind`
(its config keys and its factory). Adding a CA is its file plus one line below; nothing
else in certflow compares kind names: the engine asks for abilities instead
(``isinstance(ca, RenewalAdvisor)``, see adapters.abilities).

Sections without kinds (validation, contacts, install) declare their keys in
:data:`SECTIONS`; modules are imported only when their declarations are needed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from adapters.base import BadInput, Notifier
from adapters.settings import AdapterKind, Section

KINDS: dict[str, dict[str, str]] = {
    "ca": {"local": "adapters.ca.local", "acme": "adapters.ca.acme",
           "manual": "adapters.ca.manual"},
    "notify": {"folder": "adapters.notify.folder", "smtp": "adapters.notify.smtp",
               "webhook": "adapters.notify.webhook"},
}
#: the kind a section gets when config.toml names none
DEFAULT_KINDS = {"ca": "local", "notify": "folder"}

#: adapter sections → the package whose ``SECTION`` declares the keys every kind shares
#: (or all keys, for a section without kinds)
SECTIONS: dict[str, str] = {name: f"adapters.{name}" for name in
                            ("ca", "validation", "contacts", "notify", "install", "install.ssh")}


@dataclass
class Wiring:
    """What factories may use besides their settings."""

    vault: Any                              # adapters.crypto.keys.KeyVault
    now: Callable[[], datetime]
    notifier: Notifier | None = None        # the CA's approval mails go through it


def key_algorithms() -> tuple[str, ...]:
    """The key types the key maker can make (``[keys] algorithm``)."""
    from adapters.crypto.keys import ALGORITHMS
    return ALGORITHMS


def kinds(section: str) -> tuple[str, ...]:
    return tuple(KINDS.get(section, ()))


def adapter_kind(section: str, kind: str) -> AdapterKind:
    """The declaration of ``kind`` in ``section``; BadInput naming ``<section>.kind`` if unknown."""
    try:
        module = KINDS[section][kind]
    except KeyError:
        raise BadInput(f"{section}.kind", f"{section}.kind {kind!r} unknown: use one of "
                       f"{', '.join(kinds(section))}") from None
    declared: AdapterKind = importlib.import_module(module).KIND
    return declared


def section(name: str) -> Section:
    """The keys of an adapter section that every kind shares (or that has no kinds)."""
    return importlib.import_module(SECTIONS[name]).SECTION


def build(section_name: str, settings: dict[str, Any], wiring: Wiring) -> Any:
    """The adapter ``settings["kind"]`` names, made by its factory."""
    return adapter_kind(section_name, settings["kind"]).build(settings, wiring)
