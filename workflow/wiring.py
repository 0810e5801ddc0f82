"""The one place that reads config and builds concrete adapters."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from adapters.crypto import keys as keys_mod
from adapters.base import CertificateAuthority, ContactFinder, Installer, Notifier, Validator
from adapters.install.deliver import delivery_attachments
from adapters.crypto.keys import KeyVault
from adapters.crypto.x509check import verify_issued
from states.policy import max_lifetime
from workflow.config import Config
from workflow.errors import ConfigError


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
    keys: Any = keys_mod
    delivery_attachments: Callable = staticmethod(delivery_attachments)

    def verify(self, certificate_pem: str, chain_pem: str, *, csr_pem: str, names, now):
        cap = max_lifetime if self.config["policy"]["publicly_trusted"] else None
        return verify_issued(certificate_pem, chain_pem, csr_pem=csr_pem, names=tuple(names),
                             trust_roots=self.trust_roots, now=now, lifetime_cap=cap)


def master_key_vault(config: Config, create: bool = True) -> KeyVault:
    path = config["keys"]["master_key"]
    if not os.environ.get("CERTFLOW_MASTER_KEY") and not Path(path).exists():
        if not create:
            raise ConfigError("keys.master_key", f"master key {path} missing (run `certflow init`)")
        KeyVault.create_file(path)
    try:
        return KeyVault.load(path)
    except ValueError as exc:
        raise ConfigError(getattr(exc, "field", "keys.master_key"), str(exc), str(config.path)) from None


def message_builder(config: Config, clock=None):
    from adapters.notify.messages import MessageBuilder
    n = config["notify"]
    return MessageBuilder(n["sender"], n["templates"], clock=clock.now if clock else None)


def notifier(config: Config, clock=None) -> Notifier:
    n = config["notify"]
    builder = message_builder(config, clock)
    if n["kind"] == "smtp":
        from adapters.notify.smtp import SmtpNotifier
        return SmtpNotifier(n["host"], n["port"], builder, starttls=n["starttls"], tls=n["tls"],
                            username=n["username"], password=n["password"], timeout=n["timeout"],
                            ca_bundle=n["ca_bundle"])
    if n["kind"] == "webhook":
        from adapters.notify.webhook import WebhookNotifier
        return WebhookNotifier(n["url"], n["secret"], builder, timeout=n["timeout"], ca_bundle=n["ca_bundle"])
    from adapters.notify.folder import FolderNotifier
    return FolderNotifier(n["folder"], builder)


def certificate_authority(config: Config, vault: KeyVault, clock, notify: Notifier) -> CertificateAuthority:
    c = config["ca"]
    if c["kind"] == "acme":
        from adapters.ca.acme import AcmeCA
        return AcmeCA(c["directory"], c["state_dir"], seal=vault.encrypt, unseal=vault.decrypt,
                      clock=clock.now, email=c["email"], ca_bundle=c["ca_bundle"],
                      eab_kid=c["eab_kid"], eab_hmac_key=c["eab_hmac_key"], timeout=c["timeout"])
    if c["kind"] == "manual":
        from adapters.ca.manual import ManualCA
        return ManualCA()
    from adapters.ca.local import LocalCA
    ca = LocalCA(c["dir"], vault, clock.now, notifier=notify, connect_to=c["connect_to"],
                 approval_url=c["approval_url"])
    ca.ensure()
    return ca


def contact_finder(config: Config) -> ContactFinder | None:
    c = config["contacts"]
    if not (c["whois"] or c["rdap"]):
        return None
    from adapters.contacts.finder import ChainFinder, RdapFinder, WhoisFinder
    finders = []
    if c["rdap"]:
        finders.append(RdapFinder(c["rdap"], timeout=c["timeout"], ca_bundle=c["ca_bundle"]))
    if c["whois"]:
        finders.append(WhoisFinder(c["whois"], timeout=c["timeout"]))
    return finders[0] if len(finders) == 1 else ChainFinder(finders)


def trust_roots(config: Config, ca: CertificateAuthority) -> list[str]:
    roots = []
    for path in config["ca"]["trust_roots"]:
        try:
            roots.append(Path(path).read_text())
        except OSError as exc:
            raise ConfigError("ca.trust_roots", f"cannot read trust root {path}: {exc.strerror}",
                              str(config.path)) from None
    if config["ca"]["kind"] == "local":
        roots.append(ca.root_pem())
    return roots


def wire(config: Config, clock) -> Adapters:
    from adapters.install.local import LocalInstaller
    from adapters.validation.webroot import CompositeValidator, DnsHookValidator, WebrootValidator
    vault = master_key_vault(config)
    notify = notifier(config, clock)
    ca = certificate_authority(config, vault, clock, notify)
    dns = DnsHookValidator(config["validation"]["dns_hook"]) if config["validation"]["dns_hook"] else None
    validator = CompositeValidator(WebrootValidator(config["validation"]["webroot"]), dns)
    return Adapters(config=config, vault=vault, ca=ca, validator=validator, notifier=notify,
                    installer=LocalInstaller(run_timeout=config["install"]["timeout"]),
                    contacts=contact_finder(config), trust_roots=trust_roots(config, ca), clock=clock)
