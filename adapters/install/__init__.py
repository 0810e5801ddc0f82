"""Installing certificates: all-or-nothing over a contract's servers, TLS checks, delivery."""
from adapters.settings import Section, Setting

SECTION = Section("install", "Where full-service certificates are installed.", (
    Setting("root", "path", "var/servers",
            "Contracts without `servers` install into `<root>/<contract id>/<common name>/`."),
    Setting("timeout", "number", 60.0, "Seconds a reload command may run.",
            minimum=0, above_minimum=True),
))
