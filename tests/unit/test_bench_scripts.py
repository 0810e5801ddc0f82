"""The benchmarks import only certflow's public names: each one still starts (``--help``)
after a change inside the engine, so `make bench` cannot rot unnoticed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from support.helpers import ROOT

BENCHES = sorted(p.name for p in (ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("script", BENCHES)
def test_bench_script_starts(script):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--help"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
