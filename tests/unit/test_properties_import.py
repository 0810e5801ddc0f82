"""Property: ``certflow import`` of an export with any line damaged (a value replaced by
any JSON value, a key dropped or added, the text cut or spliced) exits 0, 2 or 75,
never a traceback; a refusal writes nothing, and what it accepts can be shown, listed
and replayed."""
from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import properties as props
from support.helpers import make_workspace
from support.inproc import CASE, assert_contract_exit, assert_unchanged, invoke, snapshot
from support.population import build_population
from workflow import config as config_mod


@pytest.fixture
def export_lines(engine, clock, workspace, tmp_path) -> list[str]:
    build_population(engine, clock)
    path = tmp_path / "all.jsonl"
    assert invoke(workspace, "export", str(path)).exit_code == 0
    return path.read_text().splitlines()


#: values at the edge of what a column, a date or SQLite holds
EDGES = ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z",
         "2026-12-01T00:00:00+09:00", "2026-12-01T00:00:00.5Z", 2 ** 63 - 1, -2 ** 63, 2 ** 64,
         -1, 0, 1.5, [], {}, "new", "on_hold", "installed", "20261201-00000000")


def _paths(obj, prefix=()):
    """Every (path) to a value inside a JSON object, the object's own keys first."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


def _set(obj, path, value):
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


def _drop(obj, path):
    for step in path[:-1]:
        obj = obj[step]
    del obj[path[-1]]


@st.composite
def damaged(draw, lines: list[str]) -> str:
    """The file's text with one line damaged."""
    lines = list(lines)
    n = draw(st.integers(0, len(lines) - 1), label="line index")
    how = draw(st.sampled_from(("value", "value", "value", "hostile", "drop", "add", "text",
                                "splice", "count")), label="how")
    if how in ("value", "hostile", "drop", "add"):
        obj = json.loads(lines[n])
        paths = list(_paths(obj))
        path = draw(st.sampled_from(paths), label="path")
        CASE["change"] = f"line {n + 1} {how} at {path!r}"
        if how == "value":
            _set(obj, path, draw(props.json_values(), label="value"))
        elif how == "hostile":
            _set(obj, path, draw(st.sampled_from(props.HOSTILE + EDGES), label="hostile"))
        elif how == "drop":
            _drop(obj, path)
        else:
            target = obj
            for step in path[:-1]:
                target = target[step]
            if isinstance(target, dict):
                target[draw(st.text(max_size=12), label="key")] = draw(props.json_values(2))
        lines[n] = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    elif how == "text":
        CASE["change"] = f"line {n + 1} text spliced"
        at = draw(st.integers(0, len(lines[n])))
        lines[n] = lines[n][:at] + draw(st.text(max_size=20)) + lines[n][at + draw(
            st.integers(0, 20)):]
    elif how == "splice":
        CASE["change"] = f"a line repeated before line {n + 1}"
        lines.insert(n, lines[draw(st.integers(0, len(lines) - 1))])
    else:
        CASE["change"] = f"cut after line {max(n, 1)}"
        lines = lines[:max(n, 1)]
    return "\n".join(lines) + "\n"


def _forget_imported(config) -> list[str]:
    """Put the target back as it was (as an operator with sqlite3 would)."""
    conn = sqlite3.connect(config_mod.load(config)["store"]["path"])
    with conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM orders")]
        for table, key in (("events", "order_id"), ("certificates", "order_id"),
                           ("orders", "id")):
            conn.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT id FROM orders)")
    conn.close()
    return ids


@given(data=st.data())
def test_import_of_a_damaged_export_exits_0_2_or_75(export_lines, tmp_path, data):
    CASE.clear()
    target = tmp_path / "target" / "config.toml"
    if not target.exists():
        make_workspace(target.parent)
    path = tmp_path / "damaged.jsonl"
    path.write_text(data.draw(damaged(export_lines), label="file"), encoding="utf-8")
    before = snapshot(target)
    CASE["file"] = path.read_text()[-400:]
    res = invoke(target, "import", str(path))
    assert_contract_exit(res)
    if res.exit_code != 0:
        assert_unchanged(before, snapshot(target), res)
        return
    try:  # what was accepted is usable: shown, listed, replayed without a crash
        for args in (("order", "list", "--json"), ("replay", "--all", "--verify", "--json"),
                     ("status",)):
            out = invoke(target, *args)
            assert_contract_exit(out)
            assert out.exit_code == 0, out.describe()
        rows = json.loads(invoke(target, "replay", "--all", "--verify", "--json").stdout)
        assert all(r["ok"] for r in rows), rows
        for order_id in (r["id"] for r in rows):
            shown = invoke(target, "order", "show", order_id)
            assert shown.exit_code == 0, shown.describe()
    finally:
        _forget_imported(target)
