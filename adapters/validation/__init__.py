"""Publishing domain-validation challenges: webroot files, dns-01 records by a hook, and
the composite that sends each challenge to the one that handles its kind."""
from adapters.settings import Section, Setting
from states import VALIDATION_METHODS

SECTION = Section("validation", "How control of the domain is shown.", (
    Setting("webroot", "path", "var/webroot",
            "Document root for `/.well-known/pki-validation/` and ACME http-01 files, for "
            "contracts without a `webroot` of their own."),
    Setting("default", "string", "file", "Method when an order names none.",
            choices=VALIDATION_METHODS),
    Setting("dns_hook", "string", None,
            "Command (no shell) run as `<hook> add` or `<hook> remove` with the TXT record's "
            "name and value, to publish dns-01 records.", syntax="command"),
))
