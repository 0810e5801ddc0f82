"""``CompositeValidator``: each challenge goes to the validator of its kind; and the
validator ``[validation]`` describes."""
from __future__ import annotations

from adapters.base import Challenge, PermanentError, Validator
from adapters.validation.dns_hook import DnsHookValidator
from adapters.validation.webroot import WebrootValidator


class CompositeValidator:
    """Dispatches challenges by kind: "http" to ``http``, "dns" to ``dns``."""

    def __init__(self, http: Validator, dns: Validator | None = None) -> None:
        self.http = http
        self.dns = dns

    def place(self, challenge: Challenge, webroot: str | None) -> None:
        self._for(challenge).place(challenge, webroot)

    def remove(self, challenge: Challenge, webroot: str | None) -> None:
        self._for(challenge).remove(challenge, webroot)

    def _for(self, challenge: Challenge) -> Validator:
        if challenge.kind == "http":
            return self.http
        if challenge.kind == "dns":
            if self.dns is None:
                raise PermanentError("dns challenges need [validation] dns_hook",
                                     kind=challenge.kind, domain=challenge.domain)
            return self.dns
        raise PermanentError(f"unknown challenge kind {challenge.kind!r}", kind=challenge.kind)


def from_settings(settings: dict) -> CompositeValidator:
    """Webroot files for http challenges; the dns hook, when set, for dns challenges."""
    dns = DnsHookValidator(settings["dns_hook"]) if settings["dns_hook"] else None
    return CompositeValidator(WebrootValidator(settings["webroot"]), dns)
