"""``certflow init``: a workspace with the embedded default config, a master key, the
local CA and the folders the defaults use."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from adapters.common.files import write_atomic
from workflow.errors import ValidationError

CONFIG_MODE = 0o600


def default_config_text() -> str:
    return resources.files("workflow").joinpath("defaults/config.toml").read_text(encoding="utf-8")


def init_workspace(directory: Path, force: bool = False, ssh_key: bool = False) -> Path:
    from workflow import config as config_mod
    from workflow.clock import SystemClock
    from workflow.engine import Engine
    from workflow.wiring import create_master_key, create_ssh_identity

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    if path.exists() and not force:
        raise ValidationError("config", f"{path} exists (use --force to overwrite)")
    # config.toml may come to hold passwords (SMTP, ACME EAB): 0600 whatever the umask
    write_atomic(path, default_config_text().encode("utf-8"), CONFIG_MODE, prefix=".config-")
    config = config_mod.load(path)
    ensure_workspace(config)
    create_master_key(config)  # the only place a master key is made
    if ssh_key:
        create_ssh_identity(config)
    engine = Engine(config_mod.load(path), SystemClock())
    engine.adapters  # makes the local CA
    engine.close()
    return path


def ensure_workspace(cfg) -> None:
    for key in (("validation", "webroot"), ("notify", "folder"), ("install", "root")):
        value = cfg[key[0]][key[1]]
        if value:
            Path(value).mkdir(parents=True, exist_ok=True)
