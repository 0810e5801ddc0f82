"""Generate docs/lifecycle.md from states/ (``make docs``, checked by tests/test_docs.py).

``python -m workflow.docs_gen`` prints the page; ``--write`` writes docs/lifecycle.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

from states import LIFECYCLE, Lifecycle
from states.lifecycle import Effect, State
from workflow.graph import mermaid

DOCS_LIFECYCLE = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"


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
    return f"""<!-- Generated from states/ by `make docs` (python -m workflow.docs_gen); do not edit.
     tests/test_docs.py fails when this page differs from the lifecycle. -->
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = lifecycle_markdown()
    if "--write" in args:
        DOCS_LIFECYCLE.write_text(text, encoding="utf-8")
        print(f"wrote {DOCS_LIFECYCLE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
