import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest


from support.helpers import free_port, make_workspace
from workflow.clock import MovableClock
from workflow.engine import Engine
from workflow import config as config_mod


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A workspace made by `certflow init` (embedded defaults); returns its config path."""
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    return free_port()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc))


@pytest.fixture
def engine(workspace, clock):
    e = Engine(config_mod.load(workspace), clock)
    yield e
    e.close()
