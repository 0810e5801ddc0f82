"""The rooms of certflow and the doors between them, read from the source (AST).

Every ``import`` statement of states/, workflow/ and adapters/ counts, also one inside a
function. ``from package import name`` counts as importing ``package.name`` when that is
a module, else ``package``. The rules:

1. states/ imports only the standard library (and states/ itself).
2. adapters/ imports nothing from workflow/.
3. A *concrete adapter* is any module under adapters/ except adapters/base.py (Protocols
   and value types), adapters/abilities.py (the optional abilities' Protocols),
   adapters/settings.py (how adapters declare their settings), adapters/common/* (shared
   helpers), adapters/registry.py and package ``__init__`` files. Outside adapters/, only workflow/wiring.py and workflow/registry.py
   (if it exists) import a concrete adapter.
4. No two modules import each other in a circle, directly or through others.

A failure lists each violation as ``file:line imports module``.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("states", "workflow", "adapters")
WIRING = {"workflow.wiring", "workflow.registry"}
NOT_CONCRETE = {"adapters", "adapters.base", "adapters.abilities", "adapters.settings",
                "adapters.registry"}


@dataclass(frozen=True)
class Import:
    source: str      # the importing file, relative to the checkout
    line: int
    importer: str    # its module name
    module: str      # the module imported

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.module}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_in(path: Path) -> list[Import]:
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    source = str(path.relative_to(ROOT))
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), source)):
        if isinstance(node, ast.Import):
            found += [Import(source, node.lineno, importer, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . / from ..x
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                named = f"{base}.{alias.name}"
                found.append(Import(source, node.lineno, importer,
                                    named if named in MODULES else base))
    return sorted(set(found), key=lambda i: (i.source, i.line, i.module))


IMPORTS = [i for name in sorted(MODULES) for i in imports_in(MODULES[name])]


def top(module: str) -> str:
    return module.split(".")[0]


def is_concrete_adapter(module: str) -> bool:
    return (module in MODULES and top(module) == "adapters" and module not in NOT_CONCRETE
            and not module.startswith("adapters.common")
            and MODULES[module].name != "__init__.py")


def circles(imports: list[Import]) -> list[list[Import]]:
    """The imports inside each strongly connected group of two or more modules
    (Tarjan's algorithm): every one of them lies on a circle."""
    graph: dict[str, set[str]] = defaultdict(set)
    for i in imports:
        if i.module != i.importer:
            graph[i.importer].add(i.module)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [[i for i in imports if i.importer in g and i.module in g] for g in groups]


def report(title: str, violations: list) -> str:
    return title + ":\n  " + "\n  ".join(str(v) for v in violations)


# --- the rules --------------------------------------------------------------------------


def test_the_source_is_found_and_read():
    assert {"states.lifecycle", "workflow.engine", "workflow.wiring", "adapters.base"} <= set(MODULES)
    assert any(i.importer == "workflow.wiring" and is_concrete_adapter(i.module) for i in IMPORTS)


def test_states_imports_only_the_standard_library():
    wrong = [i for i in IMPORTS if top(i.importer) == "states"
             and top(i.module) not in sys.stdlib_module_names and top(i.module) != "states"]
    assert not wrong, report("states/ must be pure data on the standard library", wrong)


def test_adapters_import_nothing_from_workflow():
    wrong = [i for i in IMPORTS if top(i.importer) == "adapters" and top(i.module) == "workflow"]
    assert not wrong, report("adapters/ must not import workflow/", wrong)


def test_only_the_wiring_imports_concrete_adapters():
    wrong = [i for i in IMPORTS if top(i.importer) != "adapters" and i.importer not in WIRING
             and is_concrete_adapter(i.module)]
    assert not wrong, report("only workflow/wiring.py may import a concrete adapter", wrong)


def test_no_module_imports_another_in_a_circle():
    found = circles(IMPORTS)
    assert not found, "\n".join(
        report("import circle among " + ", ".join(sorted({i.importer for i in group})), group)
        for group in found)


# --- the checker itself -------------------------------------------------------------------


def test_the_circle_finder_names_every_import_on_a_circle_and_no_other():
    def imp(importer: str, module: str) -> Import:
        return Import(importer.replace(".", "/") + ".py", 1, importer, module)

    imports = [imp("a", "b"), imp("b", "c"), imp("c", "a"), imp("c", "d"), imp("d", "e"),
               imp("e", "e")]
    [group] = circles(imports)
    assert sorted(map(str, group)) == ["a.py:1 imports b", "b.py:1 imports c", "c.py:1 imports a"]


def test_a_concrete_adapter_is_any_adapter_module_but_the_shared_ones():
    assert is_concrete_adapter("adapters.ca.local")
    assert is_concrete_adapter("adapters.notify.smtp")
    assert not is_concrete_adapter("adapters.base")
    assert not is_concrete_adapter("adapters.abilities")
    assert not is_concrete_adapter("adapters.settings")
    assert not is_concrete_adapter("adapters.common.files")
    assert not is_concrete_adapter("adapters.ca")
    assert not is_concrete_adapter("workflow.engine")
