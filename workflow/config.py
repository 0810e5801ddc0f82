"""config.toml: reading, defaults and validation against the declared keys.

Every key is an ``adapters.settings.Setting``: the core sections are declared below, the
adapter sections by the adapters themselves (adapters.registry). An unknown key, a
wrong type, a value out of range, an unknown choice or a malformed address is a
ConfigError naming the file, the line and the key (the CLI exits 2).

A section with kinds (``[ca]``, ``[notify]``) accepts the keys of every registered kind
(an operator switching kinds may leave the other kind's keys in); all are checked, only
the configured kind's are used, and the configured kind's required keys must be set.

Relative paths are relative to the config file's directory, so a workspace made by
``certflow init DIR`` can be moved as a whole.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adapters import registry
from adapters.base import BadInput
from adapters.common.files import read_capped
from adapters.common.servers import HOST_PLACEHOLDER, check_servers, is_ssh_url
from adapters.settings import Section, Setting, check_value
from states import LIFECYCLE, PLANS
from workflow.errors import ConfigError, ValidationError

_POSITIVE = {"minimum": 0, "above_minimum": True}
#: the effect kinds the lifecycle queues, and the default per-kind limits of the daemon
EFFECT_KINDS = tuple(dict.fromkeys(e.kind for s in LIFECYCLE.states for e in s.effects))
EFFECT_LIMITS = {"submit_ca": 8, "poll_ca": 16, "notify": 4, "install": 4}

CORE_SECTIONS: dict[str, Section] = {s.name: s for s in (
    Section("store", "The database: orders, events, outbox, certificates, sealed keys (a SQLite "
            "file, or PostgreSQL with `url`).", (
        Setting("path", "path", "var/data/certflow.db", "SQLite database file."),
        Setting("synchronous", "string", "full",
                "`full`: a committed payment or transition survives power loss; `normal`: "
                "survives a process crash, faster; `extra`: stricter than full.",
                choices=("full", "normal", "extra")),
        Setting("busy_timeout_ms", "integer", 15000, "How long a command waits for another "
                "process's write transaction before failing.", minimum=0),
        Setting("url", "string", None, "PostgreSQL instead of the SQLite file: "
                "`postgresql://USER@HOST:PORT/DB` (several daemons on several hosts share it; "
                "a password belongs in ~/.pgpass, not here). `path` and `synchronous` are then "
                "unused; `busy_timeout_ms` is PostgreSQL's lock_timeout."),
    )),
    Section("keys", "Private keys certflow makes for full-service orders, and the master key "
            "that encrypts them at rest.", (
        Setting("algorithm", "string", "rsa2048", "Key type for new keys.", choices=registry.key_algorithms()),
        Setting("master_key", "path", "var/data/master.key",
                "File (mode 0600) holding the key that encrypts private keys at rest; "
                "`$CERTFLOW_MASTER_KEY` takes precedence. Only `certflow init` creates it; "
                "back it up apart from the database."),
    )),
    Section("effects", "Retries of the outbox's effects (CA calls, installs, mails).", (
        Setting("max_attempts", "integer", 8, "Attempts of a failing effect before the order "
                "goes `on_hold`.", minimum=1),
        Setting("backoff_seconds", "number", 30.0, "First retry delay; attempt n waits "
                "`backoff_seconds × 2^(n-1)` (+ up to 25 % jitter, at most 6 h).", minimum=0),
        Setting("lease_seconds", "number", 300.0, "How long a worker owns a claimed effect; a "
                "crashed worker's effect is taken over after this.", **_POSITIVE,
                maximum=86400),
        Setting("workers", "integer", 16, "Effects `certflow daemon` runs at once (threads, "
                "each with its own store connection; the work is mostly waiting on CAs, "
                "mail and web servers). `daemon --once` runs them one at a time.",
                minimum=1, maximum=256),
        Setting("limits", "table", EFFECT_LIMITS, "At most this many effects of one kind run "
                "at once, so a slow kind never takes every worker and a CA is never flooded "
                "(`[effects.limits] notify = 2`; a kind not named keeps its default, kinds "
                "without one are bounded by `workers` only). Keys are effect kinds.", choices=EFFECT_KINDS, items="integer",
                minimum=1),
    )),
    Section("deadlines", "Reminders before the deadlines that states/ defines.", (
        Setting("approval_reminder_days", "list", [3, 1], "Days before the approval deadline "
                "at which the customer and the domain administrator are reminded.",
                items="integer", minimum=1),
        Setting("needs_info_days", "integer", 14, "Days an order waits in `needs_info` for the "
                "customer's amendment; then it is cancelled (\"the customer did not complete "
                "the application\").", minimum=1, maximum=365),
        Setting("needs_info_reminder_days", "list", [3], "Days before that deadline at which "
                "the customer is reminded of the query.", items="integer", minimum=1),
    )),
    Section("renewal", "Automatic renewal orders.", (
        Setting("auto_pay", "boolean", True, "Renewal orders proceed without a new payment "
                "(the certificate is part of the hosting plan); false: they wait in `ordered` "
                "for `order pay`."),
        Setting("at", "number", 0.667, "Fraction of a certificate's lifetime after which its "
                "renewal is opened (a CA's renewal advice may open it earlier).",
                minimum=0.1, maximum=1.0, below_maximum=True),
        Setting("fresh_key", "boolean", True, "Renewals get a new key; false keeps the "
                "predecessor's key."),
        Setting("payment_reminder_days", "list", [14, 7, 1], "With `auto_pay = false`: days "
                "before expiry at which the customer is reminded to pay.",
                items="integer", minimum=1),
    )),
    Section("policy", "Dated CA/Browser Forum rules (states/policy.py).", (
        Setting("publicly_trusted", "boolean", True, "Apply the CA/Browser Forum rules for "
                "publicly-trusted certificates (SC-080: no WHOIS-based approval mail since "
                "2025-07-15; SC-081 lifetimes: every certificate is checked against the cap "
                "in force at issuance)."),
    )),
    Section("daemon", "How often the long-running `certflow daemon` looks for work.", (
        Setting("dispatch_seconds", "number", 0.5, "Poll interval for due effects (a commit "
                "in the daemon's own process wakes it at once).", **_POSITIVE),
        Setting("deadline_seconds", "number", 30.0, "Interval of the deadline sweep (10-day "
                "approval expiry, reminders).", **_POSITIVE),
        Setting("renewal_seconds", "number", 3600.0, "Interval of the renewal sweep.", **_POSITIVE),
        Setting("metrics_listen", "string", "", "`host:port` where the long-running daemon "
                "serves Prometheus metrics (`/metrics`) and `/healthz`, e.g. "
                "`127.0.0.1:9464`; empty: off."),
        Setting("metrics_certificates", "integer", 1000, "Per-certificate expiry series: at "
                "most this many live certificates, those expiring soonest (0: none).",
                minimum=0, maximum=1000000),
        Setting("health_seconds", "number", 120.0, "`/healthz` answers 503 when no dispatch "
                "pass ended and no effect finished for this long.", **_POSITIVE),
        Setting("log_format", "string", "text", "Log lines of certflow commands: `text`, or "
                "`json` (one object per line); `--log-format` overrides it.",
                choices=("text", "json")),
    )),
    Section("web", "`certflow serve`: the approval page of the local CA and the operator "
            "console under `/ops/`. A process of its own: `certflow daemon` does not serve it.", (
        Setting("listen", "string", "127.0.0.1:8080", "`host:port` to listen on (loopback by "
                "default; put a TLS reverse proxy in front for the outside).", syntax="host:port"),
        Setting("public_url", "string", None, "The address people reach `certflow serve` at, "
                "e.g. `https://certs.hosting.example`; when set, the local CA's approval "
                "links are `<public_url>/approve?token=…` (instead of `ca.approval_url`), and "
                "an `https` address makes the session cookie `Secure`.", syntax="url"),
    )),
)}
#: the order sections appear in docs/config.md
SECTION_ORDER = ("store", "keys", "ca", "validation", "contacts", "notify", "install", "effects",
                 "deadlines", "renewal", "policy", "daemon", "install.ssh", "web")

CONTRACT_STATUSES = ("active", "suspended", "expired", "cancelled")
CONTRACT_SETTINGS: tuple[Setting, ...] = (
    Setting("plan", "string", None, "Required: one of the plans below.", choices=PLANS,
            required=True),
    Setting("status", "string", "active", "Orders on a contract that is not active are "
            "rejected, renewals are blocked (the operator is told).", choices=CONTRACT_STATUSES),
    Setting("fixed_ip", "boolean", False, "The site has a fixed IP address (FLEX orders are "
            "rejected without one)."),
    Setting("plesk", "boolean", True, "EX-CLOUD with a supported Plesk: full service; `false`: "
            "application-only (the customer sends a CSR and installs the delivered certificate)."),
    Setting("webroot", "path", None, "This site's document root for validation files (default "
            "`[validation] webroot`)."),
    Setting("servers", "list", None, "Install targets: directories, `ssh://USER@HOST[:PORT]/DIR` "
            "(see [install.ssh]), or tables `{path, reload, verify, name}`; several = a "
            "load-balanced group, installed all-or-nothing with one key."),
    Setting("reload", "string", None, "Command run after the files are swapped in (e.g. "
            "`systemctl reload nginx`).", syntax="command"),
    Setting("verify", "string", None, "`host:port` whose TLS handshake must then present the "
            "new certificate; `{host}:443` means each SSH server's host; a list gives one "
            "`host:port` per server.", syntax="host:port"),
)
_CONTRACT_KEYS = {s.key: s for s in CONTRACT_SETTINGS}
#: a contract id names a directory under install.root: one plain path component
CONTRACT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class DeclaredKey:
    setting: Setting
    kinds: tuple[str, ...] = ()     # the kinds that use it; () = the whole section


def declared(section: str) -> dict[str, DeclaredKey]:
    """Every key of ``section``: the shared ones, then each registered kind's."""
    if section in CORE_SECTIONS:
        return {s.key: DeclaredKey(s) for s in CORE_SECTIONS[section].settings}
    keys = {s.key: DeclaredKey(s) for s in registry.section(section).settings}
    if "kind" in keys:  # the kinds registered now (a registration needs no other edit)
        keys["kind"] = DeclaredKey(replace(keys["kind"].setting, choices=registry.kinds(section)))
    for kind in registry.kinds(section):
        for s in registry.adapter_kind(section, kind).settings:
            known = keys.get(s.key)
            keys[s.key] = DeclaredKey(s, (known.kinds if known else ()) + (kind,))
    return keys


def section_description(section: str) -> str:
    if section in CORE_SECTIONS:
        return CORE_SECTIONS[section].description
    return registry.section(section).description


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


#: a config is a few KiB; past this it is not one (and /dev/zero cannot fill memory)
CONFIG_CAP = 1 << 20


def load(path: str | os.PathLike) -> Config:
    """Read and validate config.toml; ConfigError (one line: file, line, key) otherwise."""
    p = Path(path).absolute()
    if not p.exists():
        raise ConfigError("config", "config file not found (run `certflow init` or set --config)",
                          str(p))
    try:
        text = read_capped(p, CONFIG_CAP, "config").decode("utf-8")
    except BadInput as exc:
        raise ConfigError("config", exc.message, str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError("config", "config is not UTF-8 text", str(p)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(found.group(1)) if found else None
        msg = str(exc).split(" (at ")[0]
        where = f" at line {found.group(1)}, column {found.group(2)}" if found else ""
        raise ConfigError("config", f"TOML syntax error{where}: {msg}", str(p), line) from None
    return from_dict(raw, p, text)


class _Reader:
    """Checks values against their declarations; a refusal names the file, line and key."""

    def __init__(self, cfg: Config, text: str) -> None:
        self.cfg, self.text, self.spath = cfg, text, str(cfg.path)

    def error(self, key: str, message: str, needle: str | None = None) -> ConfigError:
        return ConfigError(key, message, self.spath, _line_of(self.text, needle or key.split(".")[-1]))

    def value(self, setting: Setting, value: Any, where: str) -> Any:
        try:
            value = check_value(setting, value, where)
        except BadInput as exc:
            raise self.error(where, exc.message, setting.key) from None
        if setting.type == "path":
            return self.cfg.resolve(value)
        if setting.items == "path":
            return [self.cfg.resolve(item) for item in value]
        return value

    def table(self, given: dict, keys: dict[str, Setting], where: str) -> dict[str, Any]:
        for key in given:
            if key not in keys:
                raise self.error(f"{where}.{key}", f"unknown key {where}.{key}", key)
        return {key: self.value(s, given[key], f"{where}.{key}") if key in given else
                (self.cfg.resolve(s.default) if s.type == "path" else s.default)
                for key, s in keys.items()}


def from_dict(raw: dict, path: Path, text: str = "") -> Config:
    cfg = Config(path=path, sections={})
    reader = _Reader(cfg, text)
    for name, value in raw.items():
        if name == "contracts":
            continue
        if name not in SECTION_ORDER:
            raise reader.error(name, f"unknown section [{name}]")
        if not isinstance(value, dict):
            raise reader.error(name, f"{name} must be a table")
    for name in SECTION_ORDER:
        keys = declared(name)
        cfg.sections[name] = reader.table(_raw_section(raw, name),
                                          {k: d.setting for k, d in keys.items()}, name)
        kind = cfg.sections[name].get("kind")
        for key, d in keys.items():
            if d.setting.required and (not d.kinds or kind in d.kinds) and cfg[name][key] is None:
                when = f" when {name}.kind = \"{kind}\"" if d.kinds else ""
                raise reader.error(f"{name}.{key}", f"{name}.{key} is required{when}")
    _check_store_path(reader)
    contracts = raw.get("contracts", {})
    if not isinstance(contracts, dict):
        raise reader.error("contracts", "contracts must be tables: [contracts.\"ID\"]")
    for cid, body in contracts.items():
        cfg.contracts[cid] = _contract(reader, cid, body)
    return cfg


def _raw_section(raw: dict, name: str) -> dict:
    """``[a.b]`` is table ``b`` inside ``[a]``: given to section "a.b", not to "a"."""
    parent, _, child = name.partition(".")
    table = raw.get(parent, {})
    if child:
        return table.get(child, {}) if isinstance(table, dict) else {}
    return {k: v for k, v in table.items() if not (f"{name}.{k}" in SECTION_ORDER and isinstance(v, dict))}


def _check_store_path(reader: _Reader) -> None:
    """The database file can be made: it is not a directory and no existing parent is a file."""
    url = reader.cfg["store"].get("url")
    if url is not None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise reader.error("store.url", f"store.url must start with postgresql:// "
                               f"(got {url.split(':', 1)[0]}:…)", "url")
        return
    path = Path(reader.cfg["store"]["path"])
    if path.is_dir():
        raise reader.error("store.path", f"store.path {path} is a directory, not a database file",
                           "path")
    if path.exists() and not path.is_file():
        raise reader.error("store.path", f"store.path {path} is not a regular file (a device "
                           "or a socket cannot hold a database)", "path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise reader.error("store.path", f"store.path {path} cannot be made: {parent} "
                                   "is a file, not a directory", "path")
            return


def _contract(reader: _Reader, cid: str, body: Any) -> dict[str, Any]:
    where = f"contracts.{cid}"
    if not CONTRACT_ID.fullmatch(cid) or ".." in cid:
        raise reader.error(where, f"contracts.{cid!r}: contract id refused: use letters, digits, "
                           "'.', '_' and '-' (it names a directory under install.root)", cid)
    if not isinstance(body, dict):
        raise reader.error(where, f"{where} must be a table", cid)
    verify = body.get("verify")  # a list (one per server) or a {host} template: checked below
    if isinstance(verify, list) or (isinstance(verify, str) and HOST_PLACEHOLDER in verify):
        body = {k: v for k, v in body.items() if k != "verify"}
    out: dict[str, Any] = {"id": cid, **reader.table(body, _CONTRACT_KEYS, where)}
    if out["plan"] is None:
        raise reader.error(f"{where}.plan", f"{where}.plan is required: one of {', '.join(PLANS)}",
                           cid)
    if verify is not None and out["verify"] is None:
        out["verify"] = verify
    out["targets"] = contract_targets(reader, cid, out)
    return out


def contract_targets(reader: _Reader, cid: str, out: dict[str, Any]) -> list[dict[str, Any]]:
    """The install targets ``{path, reload, verify, name}`` of a checked contract (the
    one place a ``servers`` entry becomes a target: config seeds and the contract book)."""
    where = f"contracts.{cid}"
    servers = out["servers"] or [str(Path(reader.cfg["install"]["root"]) / cid)]
    reload_setting = _CONTRACT_KEYS["reload"]
    try:
        verifies = check_servers(servers, out["verify"], where)
    except BadInput as exc:
        raise reader.error(exc.field, exc.message, "servers") from None
    targets = []
    for i, entry in enumerate(servers):
        if isinstance(entry, str):  # ssh://USER@HOST[:PORT]/DIR stays as written
            targets.append({"path": entry if is_ssh_url(entry) else reader.cfg.resolve(entry),
                            "reload": out["reload"], "verify": verifies[i]})
        elif isinstance(entry, dict) and set(entry) <= {"path", "reload", "verify", "name"} \
                and isinstance(entry.get("path"), str):
            at = f"{where}.servers[{i}]"
            targets.append({
                "path": entry["path"] if is_ssh_url(entry["path"])
                else reader.cfg.resolve(entry["path"]),
                "reload": reader.value(reload_setting, entry["reload"], f"{at}.reload")
                if entry.get("reload") is not None else None,
                "verify": verifies[i],
                "name": entry.get("name")})
        else:
            raise reader.error(f"{where}.servers", f"{where}.servers[{i}] must be a directory or "
                               "{path, reload, verify}", "servers")
    return targets


def default_path() -> str:
    return os.environ.get("CERTFLOW_CONFIG") or "config.toml"


class _FieldReader(_Reader):
    """Contract fields from outside config.toml (the contract book): a refusal is a
    ValidationError naming the contract's field (``plan``, ``servers``, ``id``)."""

    def __init__(self, cfg: Config, cid: str) -> None:
        super().__init__(cfg, "")
        self.prefix = f"contracts.{cid}"

    def error(self, key: str, message: str, needle: str | None = None) -> ValidationError:
        rest = key[len(self.prefix):].lstrip(".") if key.startswith(self.prefix) else key
        return ValidationError(rest.split("[")[0].split(".")[0] or "id", message, needle)


def check_contract(cfg: Config, cid: str, body: dict[str, Any]) -> dict[str, Any]:
    """A contract from outside config.toml checked exactly as a ``[contracts."ID"]`` table
    is (same keys, types, choices and targets); ValidationError naming the field."""
    return _contract(_FieldReader(cfg, cid), cid, body)
