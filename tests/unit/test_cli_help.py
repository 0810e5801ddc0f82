"""Every command explains itself: `--help` exits 0 and shows an example."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from support.helpers import run_cli
from workflow.ops.cli import main

TOP_LEVEL = ("init", "order", "ca", "daemon", "replay", "export", "import", "graph", "doctor", "demo")


def _commands(cmd: click.Command, path: tuple[str, ...] = ()):
    yield path
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, path + (name,))


def test_top_level_help_lists_every_command(tmp_path):
    proc = run_cli(tmp_path / "config.toml", "--help")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert set(TOP_LEVEL) <= listed


@pytest.mark.parametrize("path", list(_commands(main)), ids=lambda p: " ".join(p) or "certflow")
def test_every_command_help_shows_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="certflow")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`certflow {' '.join(path)} --help` has no example"
