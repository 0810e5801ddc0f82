"""The one place that reads config and builds concrete adapters (through adapters.registry)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from adapters import registry
from adapters.abilities import KeyMaker, PublishesRoot, SweepsLeftovers
from adapters.base import (BadInput, CertificateAuthority, ContactFinder, Installer, Notifier,
                           Target, Validator)
from adapters.crypto.keymaker import CryptoKeyMaker
from adapters.crypto.keys import KeyVault
from adapters.contacts.approvers import check_approver, default_approver
from adapters.crypto.x509check import parse_bundle, verify_issued
from adapters.install.deliver import delivery_attachments
from states.policy import max_lifetime
from workflow.config import Config
from workflow.errors import ConfigError

MASTER_KEY = "keys.master_key"


@dataclass
class Adapters:
    config: Config
    vault: KeyVault
    ca: CertificateAuthority
    validator: Validator
    notifier: Notifier
    installer: Installer
    contacts: ContactFinder | None
    trust_roots: list[str]
    clock: Any
    keys: KeyMaker
    delivery_attachments: Callable = staticmethod(delivery_attachments)
    #: a PEM holding several certificates → (leaf, chain)
    split_bundle: Callable = staticmethod(parse_bundle)
    #: the BR 3.2.2.4.4 constructed-address rule: check a given approver, or make one
    check_approver: Callable = staticmethod(check_approver)
    default_approver: Callable = staticmethod(default_approver)

    def sweep_leftovers(self, contracts=None) -> list[str]:
        """What processes killed mid-write left in install directories (run at start);
        ``contracts``: the contract book's (default: config.toml's)."""
        if not isinstance(self.installer, SweepsLeftovers):
            return []
        known = self.config.contracts.values() if contracts is None else contracts
        targets = [Target(name=t["path"], path=t["path"]) for c in known for t in c["targets"]]
        return self.installer.sweep_leftovers(targets)

    def verify(self, certificate_pem: str, chain_pem: str, *, csr_pem: str, names, now):
        cap = max_lifetime if self.config["policy"]["publicly_trusted"] else None
        return verify_issued(certificate_pem, chain_pem, csr_pem=csr_pem, names=tuple(names),
                             trust_roots=self.trust_roots, now=now, lifetime_cap=cap)


def master_key_vault(config: Config) -> KeyVault:
    """The vault of ``keys.master_key`` (or ``$CERTFLOW_MASTER_KEY``). It is never made
    here: a missing or unreadable key is a ConfigError naming keys.master_key (only
    ``certflow init`` creates one), so a mistyped path cannot orphan every sealed key."""
    path = config["keys"]["master_key"]
    try:
        return KeyVault.load(path)
    except BadInput as exc:
        raise master_key_error(config, exc) from None


def master_key_error(config: Config, exc: BadInput) -> ConfigError:
    return ConfigError(MASTER_KEY, f"{MASTER_KEY}: {exc.message}", str(config.path))


def _wiring(config: Config, vault: KeyVault, clock, notifier: Notifier | None = None):
    return registry.Wiring(vault=vault, now=clock.now, notifier=notifier)


def notifier(config: Config, clock=None) -> Notifier:
    from workflow.clock import SystemClock
    return registry.build("notify", config["notify"], _wiring(config, None, clock or SystemClock()))


def certificate_authority(config: Config, vault: KeyVault, clock, notify: Notifier | None
                          ) -> CertificateAuthority:
    return registry.build("ca", approval_links(config), _wiring(config, vault, clock, notify))


def approval_links(config: Config) -> dict:
    """The CA's settings, its approval links pointing at `certflow serve` when
    ``[web] public_url`` is set (the page that serves them)."""
    public_url = config["web"]["public_url"]
    if not public_url or "approval_url" not in config["ca"]:
        return config["ca"]
    return {**config["ca"], "approval_url": public_url.rstrip("/") + "/approve"}


def contact_finder(config: Config) -> ContactFinder | None:
    from adapters.contacts.finder import from_settings
    return from_settings(config["contacts"])


def validator(config: Config) -> Validator:
    from adapters.validation.composite import from_settings
    return from_settings(config["validation"])


def trust_roots(config: Config, ca: CertificateAuthority) -> list[str]:
    roots = []
    for path in config["ca"]["trust_roots"]:
        try:
            roots.append(Path(path).read_text())
        except OSError as exc:
            raise ConfigError("ca.trust_roots", f"cannot read trust root {path}: {exc.strerror}",
                              str(config.path)) from None
    if isinstance(ca, PublishesRoot):
        try:
            roots.append(ca.root_pem())
        except BadInput as exc:
            if exc.field in ("master_key", MASTER_KEY):  # the CA's keys are sealed by another key
                raise master_key_error(config, exc) from None
            raise
    return roots


def installer(config: Config) -> Installer:
    """Local directories and ``ssh://`` servers, all-or-nothing."""
    from adapters.install.ssh_installer import ServerGroupInstaller
    return ServerGroupInstaller(config["install.ssh"], run_timeout=config["install"]["timeout"])


def wire(config: Config, clock) -> Adapters:
    vault = master_key_vault(config)
    notify = notifier(config, clock)
    ca = certificate_authority(config, vault, clock, notify)
    return Adapters(config=config, vault=vault, ca=ca, validator=validator(config),
                    notifier=notify, installer=installer(config),
                    contacts=contact_finder(config), trust_roots=trust_roots(config, ca),
                    clock=clock, keys=CryptoKeyMaker())


def create_master_key(config: Config) -> None:
    """``certflow init``: make the master key file unless one is configured already."""
    path = config["keys"]["master_key"]
    if os.environ.get("CERTFLOW_MASTER_KEY") or Path(path).exists():
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    KeyVault.create_file(path)


def create_ssh_identity(config: Config) -> bool:
    """``certflow init``: make ``[install.ssh] identity`` unless there is one."""
    from adapters.install.ssh_keys import create_identity
    ssh = config["install.ssh"]
    return create_identity(ssh["identity"], ssh["passphrase_env"])
