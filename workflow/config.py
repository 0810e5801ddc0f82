"""config.toml: reading, defaults and validation (unknown keys are an error naming the key).

Relative paths are relative to the config file's directory, so a workspace made by
``certflow init DIR`` can be moved as a whole.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from states import PLANS
from workflow.errors import ConfigError

_PATH = "path"
# section -> key -> (type, default). "path" is a str resolved against the config's directory.
SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "store": {"path": (_PATH, "var/data/certflow.db"), "synchronous": (str, "full"),
              "busy_timeout_ms": (int, 15000)},
    "keys": {"algorithm": (str, "rsa2048"), "master_key": (_PATH, "var/data/master.key")},
    "ca": {"kind": (str, "local"), "trust_roots": (list, []), "dir": (_PATH, "var/data/ca"),
           "connect_to": (str, None), "approval_url": (str, "https://certflow.localhost/approve"),
           "poll_seconds": (float, 60.0), "directory": (str, None), "ca_bundle": (_PATH, None),
           "email": (str, None), "eab_kid": (str, None), "eab_hmac_key": (str, None),
           "timeout": (float, 30.0), "state_dir": (_PATH, "var/data/acme")},
    "validation": {"webroot": (_PATH, "var/webroot"), "default": (str, "file"),
                   "dns_hook": (str, None)},
    "contacts": {"whois": (str, None), "rdap": (str, None), "timeout": (float, 10.0),
                 "ca_bundle": (_PATH, None)},
    "notify": {"kind": (str, "folder"), "folder": (_PATH, "var/mail"),
               "sender": (str, "certflow@hosting.example"), "operator": (str, "ops@hosting.example"),
               "templates": (_PATH, None), "host": (str, "127.0.0.1"), "port": (int, 25),
               "starttls": (bool, False), "tls": (bool, False), "username": (str, None),
               "password": (str, None), "url": (str, None), "secret": (str, None),
               "timeout": (float, 10.0), "ca_bundle": (_PATH, None)},
    "install": {"root": (_PATH, "var/servers"), "timeout": (float, 60.0)},
    "effects": {"max_attempts": (int, 8), "backoff_seconds": (float, 30.0),
                "lease_seconds": (float, 300.0)},
    "deadlines": {"approval_reminder_days": (list, [3, 1])},
    "renewal": {"auto_pay": (bool, True), "at": (float, 0.667), "fresh_key": (bool, True),
                "payment_reminder_days": (list, [14, 7, 1])},
    "policy": {"publicly_trusted": (bool, True)},
    "daemon": {"dispatch_seconds": (float, 0.5), "deadline_seconds": (float, 30.0),
               "renewal_seconds": (float, 3600.0)},
}
CONTRACT_SCHEMA: dict[str, tuple[Any, Any]] = {
    "plan": (str, None), "status": (str, "active"), "fixed_ip": (bool, False),
    "plesk": (bool, True), "webroot": (_PATH, None), "servers": (list, None),
    "reload": (str, None), "verify": (str, None),
}
CONTRACT_STATUSES = ("active", "suspended", "expired", "cancelled")
CA_KINDS = ("local", "acme", "manual")
NOTIFY_KINDS = ("folder", "smtp", "webhook")
SECRET_KEYS = frozenset({"password", "secret", "eab_hmac_key"})


@dataclass
class Config:
    path: Path
    sections: dict[str, dict[str, Any]]
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def resolve(self, value: str | None) -> str | None:
        if value is None:
            return None
        p = Path(os.path.expanduser(value))
        return str(p if p.is_absolute() else (self.root / p))


def _line_of(text: str, needle: str) -> int | None:
    pattern = re.compile(rf"^\s*\"?{re.escape(needle)}\"?\s*=|^\s*\[.*{re.escape(needle)}.*\]", re.M)
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _coerce(value: Any, kind: Any, where: str, text: str, path: str, key: str) -> Any:
    ok = {
        _PATH: isinstance(value, str), str: isinstance(value, str),
        bool: isinstance(value, bool), list: isinstance(value, list),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
    }[kind]
    if not ok:
        name = {_PATH: "a path string", str: "a string", bool: "true or false", list: "a list",
                int: "an integer", float: "a number"}[kind]
        raise ConfigError(where, f"{where} must be {name}", path, _line_of(text, key))
    return float(value) if kind is float else value


def load(path: str | os.PathLike) -> Config:
    """Read and validate config.toml; ConfigError (one line: file, line, key) otherwise."""
    p = Path(path).absolute()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config", "config file not found (run `certflow init` or set --config)",
                          str(p)) from None
    except OSError as exc:
        raise ConfigError("config", f"cannot read config: {exc.strerror}", str(p)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        msg = str(exc).split(" (at ")[0]
        where = f" at line {found.group(1)}, column {found.group(2)}" if found else ""
        raise ConfigError("config", f"TOML syntax error{where}: {msg}", str(p), line) from None
    return from_dict(raw, p, text)


def from_dict(raw: dict, path: Path, text: str = "") -> Config:
    spath = str(path)
    sections: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        if name == "contracts":
            continue
        if name not in SCHEMA:
            raise ConfigError(name, f"unknown section [{name}]", spath, _line_of(text, name))
        if not isinstance(value, dict):
            raise ConfigError(name, f"{name} must be a table", spath, _line_of(text, name))
    cfg = Config(path=path, sections=sections)
    for name, keys in SCHEMA.items():
        given = raw.get(name, {})
        section: dict[str, Any] = {}
        for key, value in given.items():
            if key not in keys:
                raise ConfigError(f"{name}.{key}", f"unknown key {name}.{key}", spath, _line_of(text, key))
        for key, (kind, default) in keys.items():
            if key in given:
                value = _coerce(given[key], kind, f"{name}.{key}", text, spath, key)
            else:
                value = default
            section[key] = cfg.resolve(value) if kind is _PATH else value
        sections[name] = section
    _check_values(cfg, text, spath)
    contracts = raw.get("contracts", {})
    if not isinstance(contracts, dict):
        raise ConfigError("contracts", "contracts must be tables: [contracts.\"ID\"]", spath)
    for cid, body in contracts.items():
        cfg.contracts[cid] = _contract(cfg, cid, body, text, spath)
    return cfg


def _check_values(cfg: Config, text: str, spath: str) -> None:
    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(key, msg, spath, _line_of(text, key.split(".")[-1]))

    if cfg["ca"]["kind"] not in CA_KINDS:
        raise bad("ca.kind", f"ca.kind {cfg['ca']['kind']!r} unknown: use one of {', '.join(CA_KINDS)}")
    if cfg["ca"]["kind"] == "acme" and not cfg["ca"]["directory"]:
        raise bad("ca.directory", "ca.directory is required when ca.kind = \"acme\"")
    if cfg["notify"]["kind"] not in NOTIFY_KINDS:
        raise bad("notify.kind", f"notify.kind {cfg['notify']['kind']!r} unknown: use one of {', '.join(NOTIFY_KINDS)}")
    if cfg["notify"]["kind"] == "webhook" and not (cfg["notify"]["url"] and cfg["notify"]["secret"]):
        raise bad("notify.url", "notify.url and notify.secret are required when notify.kind = \"webhook\"")
    if cfg["store"]["synchronous"].lower() not in ("full", "normal", "extra"):
        raise bad("store.synchronous", "store.synchronous must be full, normal or extra")
    if not 0.1 <= cfg["renewal"]["at"] < 1.0:
        raise bad("renewal.at", "renewal.at must be a fraction of the lifetime between 0.1 and 1")
    if cfg["effects"]["max_attempts"] < 1:
        raise bad("effects.max_attempts", "effects.max_attempts must be at least 1")
    if cfg["effects"]["backoff_seconds"] < 0:
        raise bad("effects.backoff_seconds", "effects.backoff_seconds must not be negative")
    for key in ("approval_reminder_days",):
        if not all(isinstance(d, int) and d > 0 for d in cfg["deadlines"][key]):
            raise bad(f"deadlines.{key}", f"deadlines.{key} must be a list of positive whole days")
    cfg["ca"]["trust_roots"] = [cfg.resolve(str(p)) for p in cfg["ca"]["trust_roots"]]


def _contract(cfg: Config, cid: str, body: Any, text: str, spath: str) -> dict[str, Any]:
    where = f"contracts.{cid}"
    if not isinstance(body, dict):
        raise ConfigError(where, f"{where} must be a table", spath, _line_of(text, cid))
    out: dict[str, Any] = {"id": cid}
    for key in body:
        if key not in CONTRACT_SCHEMA:
            raise ConfigError(f"{where}.{key}", f"unknown key {where}.{key}", spath, _line_of(text, key))
    for key, (kind, default) in CONTRACT_SCHEMA.items():
        value = _coerce(body[key], kind, f"{where}.{key}", text, spath, key) if key in body else default
        out[key] = cfg.resolve(value) if kind is _PATH else value
    if out["plan"] not in PLANS:
        raise ConfigError(f"{where}.plan", f"{where}.plan {out['plan']!r} unknown: use one of {', '.join(PLANS)}",
                          spath, _line_of(text, cid))
    if out["status"] not in CONTRACT_STATUSES:
        raise ConfigError(f"{where}.status", f"{where}.status {out['status']!r} unknown: use one of "
                          f"{', '.join(CONTRACT_STATUSES)}", spath, _line_of(text, cid))
    servers = out["servers"] or [str(Path(cfg["install"]["root"]) / cid)]
    targets = []
    for i, entry in enumerate(servers):
        if isinstance(entry, str):
            targets.append({"path": cfg.resolve(entry), "reload": out["reload"], "verify": out["verify"]})
        elif isinstance(entry, dict) and set(entry) <= {"path", "reload", "verify", "name"} and "path" in entry:
            targets.append({"path": cfg.resolve(entry["path"]), "reload": entry.get("reload"),
                            "verify": entry.get("verify"), "name": entry.get("name")})
        else:
            raise ConfigError(f"{where}.servers", f"{where}.servers[{i}] must be a directory or "
                              "{path, reload, verify}", spath, _line_of(text, "servers"))
    out["targets"] = targets
    return out


def default_path() -> str:
    return os.environ.get("CERTFLOW_CONFIG") or "config.toml"
