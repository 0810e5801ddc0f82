"""Fixtures shared by every test. The support modules that define fixtures are plugins
(``pytest_plugins``), so test modules never import fixtures by name."""
from datetime import datetime, timezone
from pathlib import Path

import pytest

from support.helpers import free_port, make_workspace
from workflow import config as config_mod
from workflow.clock import MovableClock
from workflow.engine import Engine

pytest_plugins = [
    "support.ca",
    "support.daemon",
    "support.install",
    "support.webserver",
    "support.nginx",
    "support.notify",
    "support.pebble",
    "support.population",
    "support.postgres",
    "support.sshd",
    "support.whois",
    "support.web",
]

INTEGRATION = Path(__file__).parent / "integration"

#: where the test clock starts unless a test is marked ``wall_clock``
TEST_EPOCH = datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test, and nothing else is:
    ``-m "not integration"`` runs exactly tests/unit."""
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A workspace made by `certflow init` (embedded defaults); returns its config path."""
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    return free_port()


@pytest.fixture
def clock(request) -> MovableClock:
    """The one test clock. It starts at TEST_EPOCH, or at the real time for tests marked
    ``wall_clock`` (openssl and Pebble check certificates against the system clock)."""
    if request.node.get_closest_marker("wall_clock"):
        return MovableClock(datetime.now(timezone.utc))
    return MovableClock(TEST_EPOCH)


@pytest.fixture
def engine(workspace, clock):
    e = Engine(config_mod.load(workspace), clock)
    yield e
    e.close()
