"""Property: with config.toml changed in any one place (a key set to any type or value,
an unknown key, a line dropped or junk added), ``order place``, ``order pay`` and
``daemon --once`` exit 0, 2 or 75, never a traceback, and a command refused writes
nothing."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import properties as props
from support.helpers import configure, place_args
from support.inproc import CASE, assert_contract_exit, assert_unchanged, invoke, reset_orders, snapshot
from workflow.config import CONTRACT_SETTINGS, SECTION_ORDER, declared

_PATH_VALUES = ("", ".", "var/elsewhere", "../outside", "var/data", "var/mail/../data/x",
                "config.toml", "/dev/null", "/proc/certflow-none/x")
#: every key a config may hold; contracts through C-1001 (the order's) and C-3001
KEYS = tuple(f"{section}.{key}" for section in SECTION_ORDER for key in declared(section)) + tuple(
    f"contracts.{cid}.{s.key}" for cid in ("C-1001", "C-3001") for s in CONTRACT_SETTINGS)
_PATH_KEYS = frozenset(f"{s}.{k}" for s in SECTION_ORDER for k, d in declared(s).items()
                       if d.setting.type == "path") | {"contracts.C-1001.webroot", "contracts.C-3001.webroot",
                                            "contracts.C-1001.servers", "contracts.C-3001.servers"}


def scalar_values() -> st.SearchStrategy:
    return st.one_of(
        st.booleans(), st.integers(), st.integers(-10, 100), st.sampled_from((0, -1, 2 ** 63 - 1)),
        st.floats(allow_nan=False, allow_infinity=False), st.sampled_from((0.0, -5.0, 1e300)),
        props.hostile_text(("local", "acme", "manual", "folder", "smtp", "webhook", "rsa2048",
                            "rsa1024", "ec256", "file", "email", "off", "full", "normal",
                            "127.0.0.1:1", "ops", "http://127.0.0.1:1/x", "active", "expired")))


def value_for(key: str) -> st.SearchStrategy:
    if key in _PATH_KEYS:  # never outside the test's directory (the tests may run as root)
        path = st.sampled_from(_PATH_VALUES)
        return st.one_of(path, st.lists(path, max_size=3), st.integers(), st.booleans())
    return st.one_of(scalar_values(), st.lists(scalar_values(), max_size=3))


def config_change(data, text: str) -> str:
    """config.toml's text changed in one place; every choice is printed when a case fails."""
    draw = data.draw
    how = draw(st.sampled_from(("set", "set", "set", "unknown", "drop", "junk")), label="how")
    if how in ("set", "unknown"):
        key = draw(st.sampled_from(KEYS), label="key")
        if how == "unknown":
            key = key.rsplit(".", 1)[0] + "." + draw(st.sampled_from(("typo", "path_", "Kind")))
        value = draw(value_for(key), label="value")
        CASE["change"] = f"{key} = {value!r}"
        return _configured(text, key, value)
    lines = text.splitlines()
    at = draw(st.integers(0, len(lines)), label="line")
    if how == "drop" and at < len(lines):
        CASE["change"] = f"line {at + 1} dropped: {lines[at]!r}"
        del lines[at]
    else:
        CASE["change"] = f"junk before line {at + 1}"
        lines.insert(at, draw(st.sampled_from(("[", "x = ", "[store]", "= 1", "\x00", "key = 'a",
                                               '[contracts."../../x"]', "[contracts.\"/abs\"]",
                                               "plan = \"basic\""))))
    return "\n".join(lines) + "\n"


def _configured(text: str, key: str, value) -> str:
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(text)
        section, name = key.rsplit(".", 1)
        if section.startswith("contracts."):
            section = "contracts." + section.split(".", 1)[1]
        configure(path, {f"{section}.{name}": value})
        return path.read_text()


@pytest.fixture
def pristine(workspace) -> str:
    return workspace.read_text()


@given(data=st.data())
def test_commands_under_a_changed_config_exit_0_2_or_75(workspace, pristine, data):
    CASE.clear()
    reset_orders(workspace)
    workspace.write_text(config_change(data, pristine))
    try:
        placed = None
        steps = [("order", "place", *place_args(), "--json"), ("pay",), ("daemon", "--once")]
        for step in steps:
            if step == ("pay",):
                if placed is None or not data.draw(st.booleans(), label="pay"):
                    continue
                step = ("order", "pay", placed)
            before = snapshot(workspace)
            CASE["step"] = " ".join(step[:2])
            res = invoke(workspace, *step)
            assert_contract_exit(res)
            if res.exit_code != 0:
                assert_unchanged(before, snapshot(workspace), res)
            elif step[:2] == ("order", "place"):
                import json
                placed = json.loads(res.stdout)["id"]
    finally:
        workspace.write_text(pristine)
