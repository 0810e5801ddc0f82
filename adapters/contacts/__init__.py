"""Domain administrator contacts for ``--validation email-whois``: RDAP and WHOIS."""
from adapters.settings import Section, Setting

SECTION = Section("contacts", "Where `--validation email-whois` looks up the domain "
                  "administrator (unused unless set).", (
    Setting("whois", "string", None, "WHOIS server `host:port` (RFC 3912; referrals are followed).",
            syntax="host[:port]"),
    Setting("rdap", "string", None, "RDAP base URL.", syntax="url"),
    Setting("timeout", "number", 10.0, "Seconds before a WHOIS/RDAP lookup gives up.",
            minimum=0, above_minimum=True),
    Setting("ca_bundle", "path", None, "PEM file of CAs to trust for an https RDAP server."),
))
