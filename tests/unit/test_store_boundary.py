"""The store owns every SQL statement (issue 15 item 3)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_store_runs_sql():
    offenders = []
    for package in ("workflow", "states"):
        for path in (ROOT / package).rglob("*.py"):
            if path.is_relative_to(ROOT / "workflow" / "store"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and (
                        node.attr in ("execute", "executemany", "executescript")
                        or (node.attr == "conn" and isinstance(node.value, ast.Attribute)
                            and node.value.attr == "store")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert offenders == []


def test_no_module_changes_logging_levels_at_import():
    """machine.py used to set the transitions logger's level when imported."""
    for path in (ROOT / "workflow").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: functions run when called
            if isinstance(node, ast.Expr) and "setLevel" in ast.dump(node):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} sets a log level at import")
