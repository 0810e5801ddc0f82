"""Generate docs/lifecycle.md (from states/) and docs/config.md (from the config schema).

``python -m workflow.ops.docs_gen`` prints docs/lifecycle.md; ``--write`` writes both pages.
tests/unit/test_docs.py fails when either page differs from what this module generates, and
when a config key has no description in :data:`CONFIG_DOCS`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from states import LIFECYCLE, Lifecycle
from states.lifecycle import Effect, State
from workflow.ops.graph import mermaid

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOCS_LIFECYCLE = DOCS / "lifecycle.md"
DOCS_CONFIG = DOCS / "config.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _effect(effect: Effect) -> str:
    text = f"`{effect.kind}`" + (f" {effect.param}" if effect.param else "")
    if effect.when:
        text += f" (if {effect.when})"
    return text


def _deadline(state: State) -> str:
    if not state.deadline:
        return "—"
    duration, trigger = state.deadline
    days, seconds = duration.days, duration.seconds
    amount = f"{days} days" if not seconds else f"{duration.total_seconds() / 3600:g} hours"
    return f"{amount} → `{trigger}`"


def states_table(lifecycle: Lifecycle = LIFECYCLE) -> str:
    """A Markdown table: state, description, effects queued on entry, deadline."""
    lines = ["| state | description | effects queued on entry | deadline | final |",
             "|---|---|---|---|---|"]
    for s in lifecycle.states:
        effects = "<br>".join(_effect(e) for e in s.effects) or "—"
        lines.append(f"| `{s.name}` | {_cell(s.description)} | {effects} | {_deadline(s)} | "
                     f"{'yes' if s.final else ''} |")
    return "\n".join(lines) + "\n"


def transitions_table(lifecycle: Lifecycle = LIFECYCLE) -> str:
    """A Markdown table of every transition with its guards, triggers grouped in order."""
    lines = ["| trigger | from | to | guards | meaning |", "|---|---|---|---|---|"]
    for t in lifecycle.transitions:
        guards = ", ".join(f"`{g}`" for g in t.conditions) or "—"
        lines.append(f"| `{t.trigger}` | `{t.source}` | `{t.dest}` | {guards} | {_cell(t.description)} |")
    return "\n".join(lines) + "\n"


def lifecycle_markdown(lifecycle: Lifecycle = LIFECYCLE) -> str:
    """The whole of docs/lifecycle.md."""
    holdable = ", ".join(f"`{s}`" for s in lifecycle.holdable)
    return f"""<!-- Generated from states/ by `make docs` (python -m workflow.ops.docs_gen); do not edit.
     tests/unit/test_docs.py fails when this page differs from the lifecycle. -->
# The order lifecycle

Every certificate order is a persisted state machine. This page is generated from
`states/`, the one place that says which states exist and what may move where; the
diagram is the exact output of `certflow graph --format mermaid`.

```mermaid
{mermaid(lifecycle)}```

The main line: `ordered → paid → submitted → awaiting_approval → issued → installed`
(full service) or `… → issued → delivered` (application-only: EX-CLOUD without Plesk,
through `awaiting_csr`). An effect that fails past its retries moves the order to
`on_hold` from any of {holdable}; `certflow order resume ID` returns it where it was.

## States

Effects are rows in the outbox, run by the daemon after the transition commits; an
effect with a condition is queued only when that guard passes. A deadline is set on
entry and fired by the daemon when the order is still in the state then.

{states_table(lifecycle)}
## Transitions

Guards are named functions in `states/guards.py`; all of a transition's guards must
pass. A trigger that does not apply, or a guard that refuses, changes nothing.

{transitions_table(lifecycle)}"""


# --- config.toml reference -----------------------------------------------------------

SECTION_DOCS: dict[str, str] = {
    "store": "The SQLite database: orders, events, outbox, certificates, sealed keys.",
    "keys": "Private keys certflow makes for full-service orders, and the master key that "
            "encrypts them at rest.",
    "ca": "Which certificate authority receives the applications.",
    "validation": "How control of the domain is shown.",
    "contacts": "Where `--validation email-whois` looks up the domain administrator "
                "(unused unless set).",
    "notify": "How customers, domain administrators and the operator are told.",
    "install": "Where full-service certificates are installed.",
    "effects": "Retries of the outbox's effects (CA calls, installs, mails).",
    "deadlines": "Reminders before the deadlines that states/ defines.",
    "renewal": "Automatic renewal orders.",
    "policy": "Dated CA/Browser Forum rules (states/policy.py).",
    "daemon": "How often the long-running `certflow daemon` looks for work.",
}

#: one line per key: what it means (the default comes from workflow.config.SCHEMA)
CONFIG_DOCS: dict[str, str] = {
    "store.path": "SQLite database file.",
    "store.synchronous": "`full`: a committed payment or transition survives power loss; "
                         "`normal`: survives a process crash, faster; `extra`: stricter than full.",
    "store.busy_timeout_ms": "How long a command waits for another process's write "
                             "transaction before failing.",
    "keys.algorithm": "Key type for new keys: `rsa2048`, `rsa3072`, `rsa4096`, `p256`, `p384`.",
    "keys.master_key": "File (mode 0600) holding the key that encrypts private keys at rest; "
                       "`$CERTFLOW_MASTER_KEY` takes precedence. Back it up apart from the database.",
    "ca.kind": "`local` (embedded CA, signs under its own root), `acme` (RFC 8555) or "
               "`manual` (the operator records the CA's answer with `certflow order issue`).",
    "ca.trust_roots": "Extra PEM root files issued certificates must chain to (the local "
                      "CA's own root is always trusted when `kind = \"local\"`).",
    "ca.dir": "local: where the root, the intermediate (keys sealed) and the CA's "
              "application database live.",
    "ca.connect_to": "local: fetch validation files from this `host:port` (Host header = "
                     "the order's domain) instead of reading the webroot directly.",
    "ca.approval_url": "local: the URL mailed to domain administrators; the token is "
                       "appended as `?token=…`.",
    "ca.poll_seconds": "Seconds between polls of a pending application (local CA; ACME uses "
                       "the CA's Retry-After).",
    "ca.directory": "acme: the ACME directory URL (required with `kind = \"acme\"`).",
    "ca.ca_bundle": "acme: PEM file of CAs to trust for the ACME server's TLS instead of the "
                    "system store.",
    "ca.email": "acme: account contact address.",
    "ca.eab_kid": "acme: external account binding key id, when the CA requires one.",
    "ca.eab_hmac_key": "acme: external account binding HMAC key (secret; never logged).",
    "ca.timeout": "acme: seconds before a request to the CA gives up (retried later).",
    "ca.state_dir": "acme: account key (sealed) and order records.",
    "validation.webroot": "Document root for `/.well-known/pki-validation/` and ACME "
                          "http-01 files, for contracts without a `webroot` of their own.",
    "validation.default": "Method when an order names none: `file`, `email`, `email-whois`, "
                          "`http-01`, `dns-01`.",
    "validation.dns_hook": "Command (no shell) run as `<hook> add` or `<hook> remove` with "
                           "the TXT record's name and value, to publish dns-01 records.",
    "contacts.whois": "WHOIS server `host:port` (RFC 3912; referrals are followed).",
    "contacts.rdap": "RDAP base URL.",
    "contacts.timeout": "Seconds before a WHOIS/RDAP lookup gives up.",
    "contacts.ca_bundle": "PEM file of CAs to trust for an https RDAP server.",
    "notify.kind": "`folder` (RFC 5322 `.eml` files), `smtp` or `webhook` (HMAC-signed JSON POST).",
    "notify.folder": "folder: where the `.eml` files are written (mode 0600).",
    "notify.sender": "From address; its domain also names Message-IDs.",
    "notify.operator": "Address told about orders on hold and blocked renewals.",
    "notify.templates": "Directory of Jinja templates laid out like the packaged ones "
                        "(`<language>/<template>.txt.j2`); a file there wins, the rest comes "
                        "from the package.",
    "notify.host": "smtp: server host.",
    "notify.port": "smtp: server port (25, 587 with `starttls`, 465 with `tls`).",
    "notify.starttls": "smtp: upgrade the connection with STARTTLS.",
    "notify.tls": "smtp: implicit TLS from the first byte.",
    "notify.username": "smtp: AUTH user (needs `password`).",
    "notify.password": "smtp: AUTH password (secret; never logged or shown in errors).",
    "notify.url": "webhook: http(s) URL the messages are POSTed to (required with `kind = \"webhook\"`).",
    "notify.secret": "webhook: HMAC-SHA256 key for the `X-Certflow-Signature` header (required with "
                     "`kind = \"webhook\"`).",
    "notify.timeout": "smtp/webhook: seconds before a delivery attempt gives up (retried later).",
    "notify.ca_bundle": "smtp/webhook: PEM file of CAs to trust instead of the system store.",
    "install.root": "Contracts without `servers` install into `<root>/<contract id>/<common name>/`.",
    "install.timeout": "Seconds a reload command may run.",
    "effects.max_attempts": "Attempts of a failing effect before the order goes `on_hold`.",
    "effects.backoff_seconds": "First retry delay; attempt n waits `backoff_seconds × 2^(n-1)` "
                               "(+ up to 25 % jitter, at most 6 h).",
    "effects.lease_seconds": "How long a worker owns a claimed effect; a crashed worker's "
                             "effect is taken over after this.",
    "deadlines.approval_reminder_days": "Days before the approval deadline at which the customer "
                                        "and the domain administrator are reminded.",
    "renewal.auto_pay": "Renewal orders proceed without a new payment (the certificate is part "
                        "of the hosting plan); false: they wait in `ordered` for `order pay`.",
    "renewal.at": "Fraction of a certificate's lifetime after which its renewal is opened "
                  "(ACME Renewal Information may open it earlier).",
    "renewal.fresh_key": "Renewals get a new key; false keeps the predecessor's key.",
    "renewal.payment_reminder_days": "With `auto_pay = false`: days before expiry at which "
                                     "the customer is reminded to pay.",
    "policy.publicly_trusted": "Apply the CA/Browser Forum rules for publicly-trusted "
                               "certificates (SC-080: no WHOIS-based approval mail since 2025-07-15; "
                               "SC-081 lifetimes: every certificate is checked against the cap "
                               "in force at issuance).",
    "daemon.dispatch_seconds": "Poll interval for due effects (a commit in the daemon's own "
                               "process wakes it at once).",
    "daemon.deadline_seconds": "Interval of the deadline sweep (10-day approval expiry, reminders).",
    "daemon.renewal_seconds": "Interval of the renewal sweep.",
}

CONTRACT_DOCS: dict[str, str] = {
    "plan": "Required: one of the plans below.",
    "status": "`active`, `suspended`, `expired` or `cancelled`; orders on a contract that is "
              "not active are rejected, renewals are blocked (the operator is told).",
    "fixed_ip": "The site has a fixed IP address (FLEX orders are rejected without one).",
    "plesk": "EX-CLOUD with a supported Plesk: full service; `false`: application-only "
             "(the customer sends a CSR and installs the delivered certificate).",
    "webroot": "This site's document root for validation files (default `[validation] webroot`).",
    "servers": "Install targets: directories, or tables `{path, reload, verify, name}`; several "
               "= a load-balanced group, installed all-or-nothing with one key.",
    "reload": "Command run after the files are swapped in (e.g. `systemctl reload nginx`).",
    "verify": "`host:port` whose TLS handshake must then present the new certificate.",
}


def _toml(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def _type(kind) -> str:
    from workflow.config import _PATH
    return {_PATH: "path", str: "string", int: "integer", float: "number", bool: "boolean",
            list: "list"}[kind]


def undocumented_keys() -> list[str]:
    """Config keys without a line in CONFIG_DOCS / CONTRACT_DOCS (a test keeps this empty)."""
    from workflow.config import CONTRACT_SCHEMA, SCHEMA
    missing = [f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys if f"{s}.{k}" not in CONFIG_DOCS]
    missing += [f"contracts.ID.{k}" for k in CONTRACT_SCHEMA if k not in CONTRACT_DOCS]
    missing += [f"[{s}]" for s in SCHEMA if s not in SECTION_DOCS]
    return missing


def config_markdown() -> str:
    """The whole of docs/config.md: every key of workflow.config's SCHEMA and CONTRACT_SCHEMA."""
    from states import APPLICATION_ONLY, PLANS
    from workflow.config import CA_KINDS, CONTRACT_SCHEMA, CONTRACT_STATUSES, NOTIFY_KINDS, SCHEMA
    out = [f"""<!-- Generated from workflow/config.py by `python -m workflow.ops.docs_gen --write`; do not edit.
     tests/unit/test_docs.py fails when this page differs from the schema. -->
# config.toml reference

certflow reads one TOML file: `--config FILE`, else `$CERTFLOW_CONFIG`, else
`./config.toml`. `certflow init DIR` writes the embedded default (everything local).
Relative paths are relative to the config file's directory, so a workspace can be moved
as a whole. An unknown section or key, a wrong type or an unknown value is an error that
names the file, the line and the key (exit 2); `certflow doctor` checks the rest
(database, master key, CA, directories, notifier).

Kinds: `[ca] kind` is one of {", ".join(f"`{k}`" for k in CA_KINDS)}; `[notify] kind` is one
of {", ".join(f"`{k}`" for k in NOTIFY_KINDS)}. Secrets (`notify.password`,
`notify.secret`, `ca.eab_hmac_key`) never appear in logs, errors or exports; keep the
file readable by the certflow user only.
"""]
    for section, keys in SCHEMA.items():
        out.append(f"## [{section}]\n\n{SECTION_DOCS[section]}\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        for key, (kind, default) in keys.items():
            out.append(f"| `{key}` | {_type(kind)} | {_toml(default)} | "
                       f"{_cell(CONFIG_DOCS[f'{section}.{key}'])} |")
        out.append("")
    out.append(f"""## [contracts."ID"]

One table per hosting contract; an order names its contract with `--contract ID`.
Plans: {", ".join(f"`{p}`" for p in PLANS)} ({", ".join(APPLICATION_ONLY)} is
application-only when `plesk = false`). Statuses: {", ".join(f"`{s}`" for s in CONTRACT_STATUSES)}.
""")
    out.append("| key | type | default | meaning |\n|---|---|---|---|")
    for key, (kind, default) in CONTRACT_SCHEMA.items():
        shown = "`[<install.root>/<ID>]`" if key == "servers" else _toml(default)
        out.append(f"| `{key}` | {_type(kind)} | {shown} | {_cell(CONTRACT_DOCS[key])} |")
    out.append("""
Installed files: `<server>/<common name>/{cert,chain,fullchain,privkey}.pem`, the key
mode 0600, each file swapped in atomically; on a load-balanced group every server gets
the same files or, when one fails, none keeps the new ones.

## Examples

A load-balanced contract whose servers are reloaded and checked by a TLS handshake:

```toml
[contracts."C-5001"]
plan = "pro"
servers = [
  { path = "/srv/web1/ssl", reload = "ssh web1 sudo systemctl reload nginx", verify = "10.0.0.11:443" },
  { path = "/srv/web2/ssl", reload = "ssh web2 sudo systemctl reload nginx", verify = "10.0.0.12:443" },
]
```

Mail through the company's relay, with STARTTLS and a login:

```toml
[notify]
kind = "smtp"
host = "smtp.hosting.example"
port = 587
starttls = true
username = "certflow"
password = "…"
sender = "ssl-support@hosting.example"
operator = "noc@hosting.example"
```

An ACME CA with external account binding:

```toml
[ca]
kind = "acme"
directory = "https://acme.ca.example/directory"
email = "ssl-support@hosting.example"
eab_kid = "kid-123"
eab_hmac_key = "…"
```
""")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    missing = undocumented_keys()
    if missing:
        print(f"docs_gen: config keys without a description: {', '.join(missing)}", file=sys.stderr)
        return 1
    if "--write" in args:
        for path, text in ((DOCS_LIFECYCLE, lifecycle_markdown()), (DOCS_CONFIG, config_markdown())):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    else:
        sys.stdout.write(lifecycle_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
