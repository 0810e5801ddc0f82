"""Generate docs/lifecycle.md (from states/) and docs/config.md (from the config schema).

``python -m workflow.ops.docs_gen`` prints docs/lifecycle.md; ``--write`` writes both pages.
tests/unit/test_docs.py fails when either page differs from what this module generates, and
when a declared config key has no description.
"""
from __future__ import annotations

import sys
from pathlib import Path

from states import LIFECYCLE, Lifecycle
from states.lifecycle import Effect, State
from workflow.ops.graph import mermaid

DOCS = Path(__file__).resolve().parents[2] / "docs"
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
    duration, trigger = state.deadline.after, state.deadline.trigger
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


# --- config.toml reference (generated from the declared settings) ---------------------


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
    if isinstance(value, dict):
        return "`{" + ", ".join(f"{k} = {v}" for k, v in value.items()) + "}`"
    return f"`{value}`"


def _meaning(setting, kinds: tuple[str, ...] = ()) -> str:
    text = (f"{'/'.join(kinds)}: " if kinds else "") + setting.description
    if setting.required:
        text += " Required" + (" with `kind = " + " or ".join(f'\"{k}\"' for k in kinds) + "`"
                               if kinds else "") + "."
    allowed = setting.allowed()
    if allowed and not setting.choices:
        text += f" Must be {allowed}."
    elif setting.choices:
        text += f" One of {', '.join(f'`{c}`' for c in setting.choices)}."
    if setting.secret:
        text += " Secret: never logged or shown."
    return _cell(text)


def undocumented_keys() -> list[str]:
    """Declared keys without a description (a test keeps this empty)."""
    from workflow.config import CONTRACT_SETTINGS, SECTION_ORDER, declared, section_description
    missing = [f"{s}.{k}" for s in SECTION_ORDER for k, d in declared(s).items()
               if not d.setting.description.strip()]
    missing += [f"contracts.ID.{s.key}" for s in CONTRACT_SETTINGS if not s.description.strip()]
    missing += [f"[{s}]" for s in SECTION_ORDER if not section_description(s).strip()]
    return missing


def config_markdown() -> str:
    """The whole of docs/config.md, from the declarations (workflow.config, adapters.registry)."""
    from adapters import registry
    from states import APPLICATION_ONLY, PLANS
    from workflow.config import (CONTRACT_SETTINGS, CONTRACT_STATUSES, SECTION_ORDER, declared,
                                 section_description)
    kinds = "; ".join(f"`[{s}] kind` is one of {', '.join(f'`{k}`' for k in registry.kinds(s))}"
                      for s in registry.KINDS)
    secrets = ", ".join(f"`{s}.{k}`" for s in SECTION_ORDER for k, d in declared(s).items()
                        if d.setting.secret)
    out = [f"""<!-- Generated from the declared settings (workflow/config.py and each adapter's KIND)
     by `python -m workflow.ops.docs_gen --write`; do not edit.
     tests/unit/test_docs.py fails when this page differs from the declarations. -->
# config.toml reference

certflow reads one TOML file: `--config FILE`, else `$CERTFLOW_CONFIG`, else
`./config.toml`. `certflow init DIR` writes the embedded default (everything local).
Relative paths are relative to the config file's directory, so a workspace can be moved
as a whole. An unknown section or key, a wrong type, a value out of range, an unknown
choice or a malformed address is an error that names the file, the line and the key
(exit 2); `certflow doctor` checks the rest (database, master key, CA, directories,
notifier).

Kinds: {kinds}. A section accepts the keys of each of its kinds (all are checked; only
the configured kind's are used). Secrets ({secrets}) never appear in logs, errors or
exports; keep the file readable by the certflow user only.
"""]
    for section in SECTION_ORDER:
        out.append(f"## [{section}]\n\n{section_description(section)}\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        for key, d in declared(section).items():
            out.append(f"| `{key}` | {d.setting.type} | {_toml(d.setting.default)} | "
                       f"{_meaning(d.setting, d.kinds)} |")
        out.append("")
    out.append(f"""## [contracts."ID"]

One table per hosting contract; an order names its contract with `--contract ID`. The id
is letters, digits, `.`, `_` and `-` (it names a directory under `install.root`).
Plans: {", ".join(f"`{p}`" for p in PLANS)} ({", ".join(APPLICATION_ONLY)} is
application-only when `plesk = false`). Statuses: {", ".join(f"`{s}`" for s in CONTRACT_STATUSES)}.

These tables are **seed data** of the contract book in the store (`certflow contract
put|show|list|import|history`, `engine.contracts`): they are read as a fallback, never
copied at start. A contract in the store wins over the table of the same id; the first
`contract put` of a seeded contract copies it into the store (its history then starts
with the table's values as "before"), after which editing the table changes nothing for
it. Every field is checked the same way wherever a contract comes from. A contract that
stops being `active` holds its orders not yet with the CA (naming the contract);
`order resume` continues them once it is active again.
""")
    out.append("| key | type | default | meaning |\n|---|---|---|---|")
    for setting in CONTRACT_SETTINGS:
        shown = "`[<install.root>/<ID>]`" if setting.key == "servers" else _toml(setting.default)
        out.append(f"| `{setting.key}` | {setting.type} | {shown} | {_meaning(setting)} |")
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
