"""``certflow doctor``: check what the daemon will need, before it needs it.

Each check prints one line (✓ passed, ! passed with a note, ✗ failed, - skipped) and
changes nothing: the database is opened read-only, directories get a temporary file
that is removed at once, the notifier is only asked whether it answers. Exit 0 when
every check passes; 1 when one fails, the last line naming it; 2 when config.toml
cannot be read (one line with file, line and key, like every other command).
"""
from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

from adapters.common.servers import is_ssh_url
from workflow.errors import ConfigError


class Failed(Exception):
    """A check failed. ``summary`` becomes the last line (``doctor: <summary>``)."""

    def __init__(self, summary: str, detail: str | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.detail = detail or summary


class Skipped(Exception):
    """A check that cannot run because an earlier one failed."""


@dataclass
class Result:
    name: str
    status: str          # ok | note | failed | skipped
    detail: str
    summary: str = ""


# --- the checks ---------------------------------------------------------------------


def _rel(config, path: str | None) -> str:
    if not path:
        return str(path)
    try:
        return str(Path(path).relative_to(config.root))
    except ValueError:
        return str(path)


def check_config(config) -> tuple[str, str]:
    notes = []
    for cid, c in config.contracts.items():
        if c["status"] != "active":
            notes.append(f"{cid} is {c['status']} (its orders are rejected)")
        elif c["plan"] == "flex" and not c["fixed_ip"]:
            notes.append(f"{cid} is flex without a fixed IP (its orders are rejected)")
    plans = sorted({c["plan"] for c in config.contracts.values()})
    detail = (f"{config.path}: {len(config.contracts)} contracts (plans {', '.join(plans) or 'none'}), "
              f"ca {config['ca']['kind']}, notify {config['notify']['kind']}")
    if not config.contracts:
        return "note", detail + ("; no [contracts] seeds: orders need contracts in the book "
                                 "(`certflow contract put`)")
    return ("note" if notes else "ok"), detail + ("; " + "; ".join(notes) if notes else "")


def check_database(config) -> tuple[str, str]:
    from states import LIFECYCLE
    from workflow.store.schema import MIGRATIONS, SCHEMA_VERSION
    from workflow.store.sqlite import inspect as inspect_database
    if config["store"].get("url"):
        from workflow.ops import doctor_pg
        try:
            return doctor_pg.check_postgres(config, LIFECYCLE.final_states)
        except doctor_pg.Failed as exc:
            raise Failed(exc.summary, exc.detail) from None
    path = config["store"]["path"]
    where = _rel(config, path)
    if not Path(path).is_file():
        raise Failed(f"database {where} missing",
                     f"{where} does not exist (run `certflow init`, or any command creates it)")
    try:
        found = inspect_database(path, LIFECYCLE.final_states)
    except sqlite3.Error as exc:
        raise Failed(f"database {where} unreadable", f"{where}: {exc}") from None
    ok, version, orders = found["integrity"], found["version"], found["orders"]
    in_flight = found["in_flight"]
    if ok != ["ok"]:
        raise Failed(f"database {where} is damaged",
                     f"{where}: integrity_check: {'; '.join(map(str, ok[:3]))} (restore a backup)")
    version = version or 0
    if version > SCHEMA_VERSION:
        raise Failed(f"database {where} schema {version} is newer than this certflow",
                     f"{where}: schema version {version}, this certflow knows {SCHEMA_VERSION}: "
                     "upgrade certflow")
    detail = f"{where}: schema {version} ({MIGRATIONS[version - 1][0] if version else 'empty'}), " \
             f"integrity ok, {orders} orders"
    orphans = [f"{n} in flight on contract {c!r}, which is neither in the contract book nor "
               "in config (they are held)"
               for c, n in in_flight if c not in config.contracts and c not in found["booked"]]
    if orphans:
        detail += "; " + "; ".join(orphans)
    if version < SCHEMA_VERSION:
        pending = ", ".join(name for name, _ in MIGRATIONS[version:])
        return "note", detail + f"; migrations {pending} run at the next start (back up first)"
    return ("note" if orphans else "ok"), detail


def check_master_key(config):
    from workflow.wiring import master_key_vault
    try:
        vault = master_key_vault(config)
    except ConfigError as exc:
        raise Failed("master key unreadable", exc.message) from None
    source = "$CERTFLOW_MASTER_KEY" if os.environ.get("CERTFLOW_MASTER_KEY") else \
        f"{_rel(config, config['keys']['master_key'])} (mode 0600)"
    return vault, f"from {source}"


def _certificate(pem: str, what: str):
    from cryptography import x509
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        raise Failed(f"{what} is not a PEM certificate") from None


def check_trust_roots(config) -> list[str]:
    out = []
    for path in config["ca"]["trust_roots"]:
        try:
            pem = Path(path).read_text(encoding="ascii")
        except OSError as exc:
            raise Failed(f"trust root {path} unreadable", f"ca.trust_roots: cannot read {path}: "
                         f"{exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise Failed(f"trust root {path} unreadable", f"ca.trust_roots: {path} is not "
                         "ASCII PEM text") from None
        _certificate(pem, f"trust root {path}")
        out.append(_rel(config, path))
    return out


def _health(what: str, adapter) -> tuple[str, str]:
    """Run the adapter's own check (the Checkable ability); a refusal fails the check."""
    from adapters.abilities import Checkable
    from adapters.base import AdapterError, BadInput
    if not isinstance(adapter, Checkable):
        return "ok", f"{what}: nothing to check"
    try:
        health = adapter.check()
    except (AdapterError, BadInput) as exc:
        raise Failed(exc.message) from None
    if health.note:
        return "note", f"{health.detail}; {health.note}"
    return "ok", health.detail


def check_ca(config, vault) -> tuple[str, str]:
    from adapters.base import BadInput
    from workflow.clock import SystemClock
    from workflow.wiring import certificate_authority
    roots = check_trust_roots(config)
    kind = config["ca"]["kind"]
    if vault is None:
        raise Skipped(f"the {kind} CA needs the master key")
    try:
        ca = certificate_authority(config, vault, SystemClock(), None)  # builds; touches nothing
    except BadInput as exc:
        raise Failed(f"ca: {exc.message}") from None
    status, detail = _health(f"ca {kind}", ca)
    if roots:
        detail += f"; trust roots {', '.join(roots)} readable"
    return status, detail


def _writable(path: str) -> str:
    """Create and delete a temporary file in ``path`` or, when it does not exist yet, in
    its nearest existing parent (certflow creates the rest). Returns what was tested."""
    p = Path(path)
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OSError(f"{probe} is not a directory")
    with tempfile.NamedTemporaryFile(dir=probe, prefix=".certflow-doctor-"):
        pass
    return "" if probe == p else f" (created under {probe})"


def check_webroots(config) -> tuple[str, str]:
    places = {config["validation"]["webroot"]: "validation.webroot"}
    for cid, c in config.contracts.items():
        if c["webroot"]:
            places.setdefault(c["webroot"], f"contracts.{cid}.webroot")
    for path, key in places.items():
        try:
            _writable(path)
        except OSError as exc:
            raise Failed(f"webroot {path} ({key}) not writable",
                         f"{key} {path}: {exc.strerror or exc}") from None
    return "ok", f"{len(places)} writable: " + ", ".join(_rel(config, p) for p in places)


def check_targets(config) -> tuple[str, str]:
    tested: dict[str, str] = {}
    for cid, c in config.contracts.items():
        for target in c["targets"]:
            path = target["path"]
            if path in tested or is_ssh_url(path):  # SSH servers: check_ssh_servers
                continue
            try:
                tested[path] = _writable(path)
            except OSError as exc:
                raise Failed(f"install target {path} (contract {cid}) not writable",
                             f"contracts.{cid}: {path}: {exc.strerror or exc}") from None
            if target.get("reload"):
                try:
                    program = shlex.split(target["reload"])[0]
                except (ValueError, IndexError):
                    raise Failed(f"reload command of contract {cid} cannot be parsed") from None
                if not shutil.which(program):
                    raise Failed(f"reload command {program!r} of contract {cid} not found")
    if not tested:
        return "note", "no contracts, so no install targets"
    return "ok", f"{len(tested)} install directories writable"


def ssh_targets(config) -> list:
    from adapters.common.servers import install_targets
    return [t for c in config.contracts.values() for t in install_targets(c["targets"])
            if is_ssh_url(t.path)]


def check_ssh_servers(config) -> tuple[str, str]:
    """Each SSH server: connect, host key, login, DIR writable, reload program present."""
    from adapters.abilities import ChecksServers
    from workflow.wiring import installer
    targets, servers = ssh_targets(config), installer(config)
    if not isinstance(servers, ChecksServers):
        return "note", "the installer cannot check SSH servers"
    checks = servers.check_servers(targets)
    bad = [c for c in checks if c.step]
    if bad:
        first = bad[0]
        raise Failed(f"SSH server {first.target.name} ({first.target.path}) failed at "
                     f"{first.step}: {first.detail}",
                     "; ".join(f"{c.target.name} ({c.target.path}) {c.step}: {c.detail}"
                               for c in bad)) from None
    return "ok", f"{len(checks)} SSH servers: login, directory writable, reload program present"


def check_notifier(config) -> tuple[str, str]:
    from adapters.base import BadInput
    from workflow.wiring import notifier
    try:
        notify = notifier(config)
    except BadInput as exc:
        raise Failed(f"notify: {exc.message}", f"notify.{exc.field.split('.')[-1]}: {exc.message}") from None
    return _health(f"notify {config['notify']['kind']}", notify)


def check_contacts(config) -> tuple[str, str]:
    from adapters.base import BadInput
    from workflow.wiring import contact_finder
    try:
        finder = contact_finder(config)
    except BadInput as exc:
        raise Failed(f"contacts: {exc.message}") from None
    return _health("contacts", finder)


# --- running and printing -----------------------------------------------------------


def _symbols() -> dict[str, str]:
    fancy = {"ok": "✓", "note": "!", "failed": "✗", "skipped": "-"}
    try:
        "".join(fancy.values()).encode(sys.stdout.encoding or "ascii")
        return fancy
    except (UnicodeEncodeError, LookupError):
        return {"ok": "ok", "note": "!", "failed": "FAIL", "skipped": "-"}


_COLORS = {"ok": "green", "note": "yellow", "failed": "red", "skipped": "bright_black"}


def _print(result: Result, symbols: dict[str, str]) -> None:
    mark = click.style(symbols[result.status], fg=_COLORS[result.status], bold=True)
    click.echo(f"{mark} {result.name:<11} {result.detail}")


def _run(name: str, fn: Callable[[], tuple[str, str]]) -> Result:
    try:
        status, detail = fn()
        return Result(name, status, detail)
    except Failed as exc:
        return Result(name, "failed", exc.detail, exc.summary)
    except Skipped as exc:
        return Result(name, "skipped", str(exc))
    except Exception as exc:  # a check must report, never crash the doctor
        text = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return Result(name, "failed", text, f"{name}: {text}")


def run_doctor(config_path: str | os.PathLike) -> int:
    """Run every check, print one line each; return the exit code (0, 1 or 2)."""
    from workflow import config as config_mod
    symbols = _symbols()
    try:
        config = config_mod.load(config_path)
    except ConfigError as exc:
        _print(Result("config", "failed", exc.message), symbols)
        click.echo(f"certflow: {exc.message}", err=True)
        return 2

    results = [_run("config", lambda: check_config(config))]
    results.append(_run("database", lambda: check_database(config)))
    vault_box: list = []

    def master_key() -> tuple[str, str]:
        vault, detail = check_master_key(config)
        vault_box.append(vault)
        return "ok", detail

    results.append(_run("master key", master_key))
    results.append(_run("ca", lambda: check_ca(config, vault_box[0] if vault_box else None)))
    results.append(_run("webroot", lambda: check_webroots(config)))
    results.append(_run("install", lambda: check_targets(config)))
    if ssh_targets(config):
        results.append(_run("ssh", lambda: check_ssh_servers(config)))
    results.append(_run("notifier", lambda: check_notifier(config)))
    if config["contacts"]["whois"] or config["contacts"]["rdap"]:
        results.append(_run("contacts", lambda: check_contacts(config)))
    for result in results:
        _print(result, symbols)

    failed = [r for r in results if r.status == "failed"]
    if not failed:
        click.echo(f"doctor: all {len(results)} checks passed")
        return 0
    if len(failed) == 1:
        click.echo(f"doctor: {failed[0].summary}", err=True)
    else:
        click.echo(f"doctor: {len(failed)} checks failed: " + "; ".join(r.summary for r in failed),
                   err=True)
    return 1
