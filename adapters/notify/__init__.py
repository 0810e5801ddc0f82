"""Notifications: message rendering, and the folder, SMTP and webhook senders.

The keys every notifier kind shares; each kind declares its own in its module (``KIND``)."""
from adapters.registry import DEFAULT_KINDS, kinds
from adapters.settings import Section, Setting

SECTION = Section("notify", "How customers, domain administrators and the operator are told.", (
    Setting("kind", "string", DEFAULT_KINDS["notify"],
            "`folder` (RFC 5322 `.eml` files), `smtp` or `webhook` (HMAC-signed JSON POST).",
            choices=kinds("notify")),
    Setting("sender", "string", "certflow@hosting.example",
            "From address; its domain also names Message-IDs.", syntax="email"),
    Setting("operator", "string", "ops@hosting.example",
            "Address told about orders on hold and blocked renewals.", syntax="email"),
    Setting("templates", "path", None,
            "Directory of Jinja templates laid out like the packaged ones "
            "(`<language>/<template>.txt.j2`); a file there wins, the rest comes from the package."),
))

#: keys smtp and webhook share
DELIVERY_TIMEOUT = Setting("timeout", "number", 10.0, "Seconds before a delivery attempt gives "
                           "up (retried later).", minimum=0, above_minimum=True)
DELIVERY_CA_BUNDLE = Setting("ca_bundle", "path", None,
                             "PEM file of CAs to trust instead of the system store.")
