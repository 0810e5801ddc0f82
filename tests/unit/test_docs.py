"""The docs say what the code does: generated pages are current, every config key is
documented, the systemd unit is valid, and the commands the docs name exist."""
from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest

from support.helpers import ROOT, run_cli
from workflow import config as config_mod
from workflow.ops import docs_gen
from workflow.ops.cli import main
from workflow.config import CONTRACT_SETTINGS, SECTION_ORDER, declared

DOCS = ROOT / "docs"
STALE = "out of date: run `.venv/bin/python -m workflow.ops.docs_gen --write`"


def test_lifecycle_page_is_current():
    assert (DOCS / "lifecycle.md").read_text(encoding="utf-8") == docs_gen.lifecycle_markdown(), STALE


def test_lifecycle_page_holds_the_graph_command_output(tmp_path):
    proc = run_cli(tmp_path / "config.toml", "graph", "--format", "mermaid", check=True)
    page = (DOCS / "lifecycle.md").read_text(encoding="utf-8")
    block = re.search(r"```mermaid\n(.*?)```", page, re.S)
    assert block and block.group(1) == proc.stdout, STALE


def test_lifecycle_page_tables_every_state():
    from states import LIFECYCLE
    page = (DOCS / "lifecycle.md").read_text(encoding="utf-8")
    for state in LIFECYCLE.states:
        assert f"| `{state.name}` | {state.description}" in page
    assert "10 days → `expire`" in page


def documented(page: str, heading: str) -> dict[str, tuple[str, object]]:
    """key -> (type, default) from one table of docs/config.md, read as a user reads it."""
    body = page.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.*?) \| .+ \|$", body, re.M)
    return {key: (kind, None if cell in ("unset", "`[<install.root>/<ID>]`")
                  else tomllib.loads(f"v = {cell.strip('`')}")["v"])
            for key, kind, cell in rows}


def test_config_page_is_current_and_documents_every_key(tmp_path):
    assert docs_gen.undocumented_keys() == []
    page = (DOCS / "config.md").read_text(encoding="utf-8")
    assert page == docs_gen.config_markdown(), STALE

    # the page tells what the loader really does with a config that sets nothing
    config = tmp_path / "config.toml"
    config.write_text('[contracts."C-1"]\nplan = "basic"\n')
    loaded = config_mod.load(config)
    for section, keys in loaded.sections.items():
        table = documented(page, f"## [{section}]")
        assert set(table) == set(keys), f"[{section}] keys documented vs. read by the loader"
        for key, (kind, default) in table.items():
            expected = str(tmp_path / default) if kind == "path" and default else default
            assert keys[key] == expected, f"{section}.{key}: docs say {default!r}"
    contract = loaded.contracts["C-1"]
    table = documented(page, '## [contracts."ID"]')
    assert set(table) == set(contract) - {"id", "targets"}
    for key, (kind, default) in table.items():
        if key not in ("plan", "servers"):  # set above; derived from install.root
            assert contract[key] == default, f"contracts.ID.{key}: docs say {default!r}"
    for section in SECTION_ORDER:
        body = page.split(f"## [{section}]\n", 1)[1].split("\n## ", 1)[0]
        for key in declared(section):
            assert f"| `{key}` |" in body, f"{section}.{key} missing from docs/config.md"
    contracts = page.split('## [contracts."ID"]', 1)[1]
    for setting in CONTRACT_SETTINGS:
        assert f"| `{setting.key}` |" in contracts


def _unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DOCS / "certflow.service").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_unit_runs_the_daemon_hardened():
    unit = _unit()
    assert unit["ExecStart"][0].endswith(("certflow daemon", "certflow -v daemon"))
    assert unit["User"] == ["certflow"]
    assert unit["Restart"] == ["on-failure"] and unit["KillSignal"] == ["SIGTERM"]
    assert any(v.startswith("CERTFLOW_CONFIG=") for v in unit["Environment"])
    assert unit["WorkingDirectory"][0] in unit["Environment"][0]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    assert unit["ReadWritePaths"][0].startswith(unit["WorkingDirectory"][0])


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_unit_passes_systemd_analyze(tmp_path):
    certflow = shutil.which("certflow") or str(ROOT / ".venv" / "bin" / "certflow")
    text = (DOCS / "certflow.service").read_text().replace("/opt/certflow/.venv/bin/certflow", certflow)
    unit = tmp_path / "certflow.service"
    unit.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines()
                  if line.strip() and "not executable" not in line]
    assert proc.returncode == 0 and not complaints, complaints


def _code(text: str) -> str:
    """The fenced blocks and inline code spans of a Markdown page."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    rest = re.sub(r"```.*?```", "", text, flags=re.S)
    return "\n".join(blocks + re.findall(r"`([^`\n]+)`", rest))


def test_commands_named_in_the_docs_exist():
    code = "\n".join(_code(p.read_text(encoding="utf-8")) for p in DOCS.glob("*.md"))
    named = re.findall(r"(?:^|[\s/])certflow(?: -v| --config \S+)* ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?",
                       code, re.M)
    assert ("daemon", "") in named and ("order", "resume") in named
    for command, sub in named:
        if command == "cd":  # the cron line's user field: `certflow cd /srv/certflow && ...`
            continue
        assert command in main.commands, f"docs name `certflow {command}`, which does not exist"
        group = main.commands[command]
        if sub and hasattr(group, "commands"):
            assert sub in group.commands, f"docs name `certflow {command} {sub}`, which does not exist"
