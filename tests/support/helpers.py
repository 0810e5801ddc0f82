"""Shared test helpers: workspaces on the embedded defaults, config edits, the CLI."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CERTFLOW = [sys.executable, "-m", "workflow"]

ORDER = dict(common_name="www.example.jp", organization="Example Corp.", unit="Web",
             locality="Shinjuku-ku", prefecture="Tokyo", country="JP", plan="basic",
             contract="C-1001", email="owner@example.jp")

#: a script for another process that holds the write lock of the SQLite store at argv[1]
#: (BEGIN IMMEDIATE) until a line arrives on its stdin
HOLD_LOCK = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
""")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def configure(config: Path, settings: dict) -> None:
    """Set ``{"section.key": value}`` in a config.toml (replacing or adding the line)."""
    text = Path(config).read_text()
    for dotted, value in settings.items():
        section, key = dotted.rsplit(".", 1)
        header = f"[{section}]" if not section.startswith("contracts.") else \
            f'[contracts."{section.split(".", 1)[1]}"]'
        line = f"{key} = {toml_value(value)}"
        if header not in text:
            text += f"\n{header}\n{line}\n"
            continue
        start = text.index(header) + len(header)
        nxt = re.search(r"^\[", text[start:], re.M)
        end = start + nxt.start() if nxt else len(text)
        body = text[start:end]
        pattern = re.compile(rf"^#?[ \t]*{re.escape(key)}[ \t]*=.*$", re.M)
        body = pattern.sub(lambda _: line, body, count=1) if pattern.search(body) else body.rstrip("\n") + f"\n{line}\n\n"
        text = text[:start] + body + text[end:]
    Path(config).write_text(text)


def add_contract(config: Path, cid: str, **fields) -> None:
    lines = [f'\n[contracts."{cid}"]'] + [f"{k} = {toml_value(v)}" for k, v in fields.items()]
    with open(config, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def make_workspace(directory: Path, settings: dict | None = None) -> Path:
    from workflow.ops.workspace import init_workspace
    config = init_workspace(Path(directory))
    if settings:
        configure(config, settings)
    return config


def run_cli(config: Path, *args: str, env: dict | None = None, check: bool = False,
            prefix: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("CERTFLOW_DEBUG", None)
    cmd = (prefix or []) + CERTFLOW + ["--config", str(config), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=str(ROOT))
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr}")
    return proc


def doctor(config: Path):
    return run_cli(config, "doctor", timeout=60)


def last_line(proc) -> str:
    return (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1]


def cli_json(config: Path, *args: str, **kw):
    proc = run_cli(config, *args, "--json", check=True, **kw)
    return json.loads(proc.stdout)


def place_args(**overrides) -> list[str]:
    fields = {**ORDER, **overrides}
    flags = {"common_name": "--cn", "organization": "--org"}
    out = []
    for key, value in fields.items():
        if value is None:
            continue
        out += [flags.get(key, "--" + key.replace("_", "-")), str(value)]
    return out


def free_port(udp_too: bool = False) -> int:
    """A loopback TCP port nobody listens on right now (bound, then released); with
    ``udp_too``, one free for UDP as well."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port")


def break_installation(config: Path) -> Path:
    """A regular file where the contract's server directory should be."""
    servers = Path(config).parent / "var/servers"
    servers.mkdir(parents=True, exist_ok=True)
    blocker = servers / "C-1001"
    blocker.write_text("not a directory\n")
    return blocker


def installed_order(engine, **overrides):
    """An order of ORDER (with ``overrides``) paid and run by the daemon to ``installed``."""
    from workflow.effects.daemon import Daemon
    o = engine.place(**{**ORDER, **overrides})
    engine.fire(o.id, "pay")
    Daemon(engine).run_once()
    o = engine.get(o.id)
    assert o.state == "installed", o.reason
    return o
