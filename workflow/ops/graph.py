"""Draw the lifecycle (states/) as Mermaid or Graphviz dot."""
from __future__ import annotations

from states import Lifecycle


def _edges(lifecycle: Lifecycle) -> list[tuple[str, str, str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for t in lifecycle.transitions:
        edges.setdefault((t.source, t.dest), [])
        if t.trigger not in edges[(t.source, t.dest)]:
            edges[(t.source, t.dest)].append(t.trigger)
    return [(s, d, "/".join(ts)) for (s, d), ts in edges.items()]


def mermaid(lifecycle: Lifecycle) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {lifecycle.initial}"]
    for s, d, label in _edges(lifecycle):
        lines.append(f"    {s} --> {d}: {label}")
    for state in lifecycle.states:
        if state.final:
            lines.append(f"    {state.name} --> [*]")
    for state in lifecycle.states:
        note = state.description
        if state.deadline:
            note += f" (after {state.deadline[0].days} days: {state.deadline[1]})"
        lines.append(f"    {state.name}: {state.name} — {note}")
    return "\n".join(lines) + "\n"


def dot(lifecycle: Lifecycle) -> str:
    lines = ["digraph certflow {", "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    for state in lifecycle.states:
        shape = ", peripheries=2" if state.final else ""
        lines.append(f'    "{state.name}" [tooltip="{state.description}"{shape}];')
    for s, d, label in _edges(lifecycle):
        lines.append(f'    "{s}" -> "{d}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
