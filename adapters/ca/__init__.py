"""Certificate authorities: local (embedded default), ACME (RFC 8555) and manual.

The keys every CA kind shares; each kind declares its own in its module (``KIND``)."""
from adapters.registry import DEFAULT_KINDS, kinds
from adapters.settings import Section, Setting

SECTION = Section("ca", "Which certificate authority receives the applications.", (
    Setting("kind", "string", DEFAULT_KINDS["ca"],
            "`local` (embedded CA, signs under its own root), `acme` (RFC 8555) or `manual` "
            "(the operator records the CA's answer with `certflow order issue`).",
            choices=kinds("ca")),
    Setting("trust_roots", "list", [],
            "Extra PEM root files issued certificates must chain to (a CA that publishes "
            "its own root, like the local one, is always trusted).", items="path"),
))
