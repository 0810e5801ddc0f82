"""A private PostgreSQL for the tests: ``initdb`` into a temporary directory, run as an
unprivileged user (PostgreSQL refuses root) on a free loopback port, removed at the end
of the session. ``CERTFLOW_TEST_PG_URL`` (a database the tests may create databases
beside) uses an existing server instead.

Fixtures: ``pg_server`` (session: the server's base URL), ``pg_url`` (a fresh empty
database per test, dropped afterwards), and ``backend`` (parametrized "sqlite" /
"postgresql": a config.toml ``[store]`` section for tests that must hold on both).
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
RUN_AS = "nobody"


def _pg_tool(name: str) -> str | None:
    for d in PG_BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", RUN_AS, "--", *cmd]


class Cluster:
    """A throw-away PostgreSQL cluster (see the module docstring)."""

    def __init__(self) -> None:
        initdb, self.pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
        if not initdb or not self.pg_ctl:
            pytest.skip("PostgreSQL is not installed (make system-deps installs it)")
        self.root = Path(tempfile.mkdtemp(prefix="certflow-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)
        self.port = _free_port()
        subprocess.run(_as_user([initdb, "-D", str(self.data), "-U", "certflow", "-A", "trust",
                                 "-E", "UTF8", "--no-locale", "--no-sync"]),
                       check=True, capture_output=True, cwd=self.root)
        # fsync off: a test cluster need not survive the machine; certflow's own
        # synchronous_commit stays on as in production
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(_as_user([self.pg_ctl, "-D", str(self.data), "-o", options,
                                 "-l", str(self.root / "log"), "-w", "start"]),
                       check=True, capture_output=True, cwd=self.root)
        self.url = f"postgresql://certflow@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(_as_user([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True, cwd=self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def migrate(url: str) -> None:
    """Make certflow's tables, as `certflow init` does for a SQLite workspace."""
    from workflow.store.postgres import PostgresStore
    PostgresStore(url).close()


def database_url(base: str, name: str) -> str:
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}"


def create_database(base: str) -> str:
    import psycopg
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(base, name)


def drop_database(base: str, url: str) -> None:
    import psycopg
    name = url.rpartition("/")[2]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server():
    existing = os.environ.get("CERTFLOW_TEST_PG_URL")
    if existing:
        yield existing
        return
    cluster = Cluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server):
    url = create_database(pg_server)
    try:
        yield url
    finally:
        drop_database(pg_server, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> dict:
    """config.toml settings for each backend: {} (SQLite, the default) or store.url."""
    if request.param == "sqlite":
        return {}
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("SQLite only")
    url = request.getfixturevalue("pg_url")
    migrate(url)
    return {"store.url": url}


@pytest.fixture
def workspace_both(tmp_path, backend) -> Path:
    """A workspace on each backend; a module runs its tests on both with
    ``@pytest.fixture def workspace(workspace_both): return workspace_both``."""
    from support.helpers import make_workspace
    return make_workspace(tmp_path / "ws", backend)


def sql(url: str, query: str, args: tuple = ()) -> list[tuple]:
    """Run one statement (SQLite dialect, ``?`` placeholders, as the tests write them)
    on a PostgreSQL database, committed; its rows if it returns any."""
    import psycopg
    from workflow.store.dialect import postgres
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(postgres(query), args)
        return cur.fetchall() if cur.description else []


def store_sql(config, query: str, args: tuple = ()) -> list[tuple]:
    """One statement on the store a config.toml names, whichever backend it is."""
    import sqlite3

    from workflow import config as config_mod
    store = config_mod.load(config)["store"]
    if store.get("url"):
        return sql(store["url"], query, args)
    with sqlite3.connect(store["path"]) as conn:
        rows = conn.execute(query, args).fetchall()
    conn.close()
    return rows


@pytest.fixture
def other_backend_settings(request, backend) -> dict:
    """Settings for a second workspace on the same backend (its own database)."""
    if not backend:
        return {}
    server = request.getfixturevalue("pg_server")
    url = create_database(server)
    request.addfinalizer(lambda: drop_database(server, url))
    migrate(url)
    return {"store.url": url}


class _PgConn:
    """A PostgreSQL connection used like the tests' sqlite3 ones: ``with`` closes it,
    statements in SQLite's dialect, rows by index or name."""

    def __init__(self, url: str) -> None:
        import psycopg

        from workflow.store.postgres import Connection, row_factory
        self._conn = Connection(psycopg.connect(url, autocommit=True, row_factory=row_factory))

    def execute(self, query: str, args: tuple = ()):
        return self._conn.execute(query, args)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._conn.raw.close()

    def close(self) -> None:
        self._conn.raw.close()


def store_conn(config):
    """A connection to the store a config.toml names (sqlite3.Row-like rows on both)."""
    import sqlite3

    from workflow import config as config_mod
    store = config_mod.load(config)["store"]
    if store.get("url"):
        return _PgConn(store["url"])
    conn = sqlite3.connect(store["path"], timeout=30)
    conn.row_factory = sqlite3.Row
    return conn
