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
import socket
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import click

from workflow.errors import ConfigError

#: the local CA's certificates should outlive this; less is a note, not a failure
CA_EXPIRY_NOTE = timedelta(days=60)


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
        return "note", detail + "; no [contracts] yet: every order will be refused"
    return ("note" if notes else "ok"), detail + ("; " + "; ".join(notes) if notes else "")


def check_database(config) -> tuple[str, str]:
    from workflow.store.schema import MIGRATIONS, SCHEMA_VERSION
    from workflow.store.sqlite import inspect as inspect_database
    path = config["store"]["path"]
    where = _rel(config, path)
    if not Path(path).is_file():
        raise Failed(f"database {where} missing",
                     f"{where} does not exist (run `certflow init`, or any command creates it)")
    try:
        found = inspect_database(path)
    except sqlite3.Error as exc:
        raise Failed(f"database {where} unreadable", f"{where}: {exc}") from None
    ok, version, orders = found["integrity"], found["version"], found["orders"]
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
    if version < SCHEMA_VERSION:
        pending = ", ".join(name for name, _ in MIGRATIONS[version:])
        return "note", detail + f"; migrations {pending} run at the next start (back up first)"
    return "ok", detail


def check_master_key(config):
    from workflow.wiring import master_key_vault
    try:
        vault = master_key_vault(config, create=False)
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
        except (OSError, UnicodeDecodeError) as exc:
            raise Failed(f"trust root {path} unreadable", f"ca.trust_roots: cannot read {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
        _certificate(pem, f"trust root {path}")
        out.append(_rel(config, path))
    return out


def check_local_ca(config, vault) -> tuple[str, str]:
    from adapters.crypto.keys import public_key_matches
    from adapters.ca.local import LocalCA
    from workflow.clock import SystemClock

    directory = config["ca"]["dir"]
    where = _rel(config, directory)
    ca = LocalCA(directory, vault, SystemClock().now)  # constructing it touches no file
    now = datetime.now(timezone.utc)
    notes = []
    for name, read in (("root", ca.root_pem), ("intermediate", ca.chain_pem)):
        try:
            pem = read()
        except OSError as exc:
            raise Failed(f"local CA {name} certificate unreadable",
                         f"{where}/{name}.pem: {exc.strerror} (run `certflow init`)") from None
        cert = _certificate(pem, f"local CA {name} certificate")
        try:
            sealed = Path(directory, f"{name}.key.enc").read_bytes()
            key_pem = vault.decrypt(sealed)
        except OSError as exc:
            raise Failed(f"local CA {name} key unreadable", f"{where}/{name}.key.enc: {exc.strerror}") from None
        except ValueError:
            raise Failed(f"local CA {name} key cannot be decrypted",
                         f"{where}/{name}.key.enc does not open with this master key") from None
        if not public_key_matches(key_pem, pem):
            raise Failed(f"local CA {name} key does not match its certificate")
        expires = cert.not_valid_after_utc
        if expires <= now:
            raise Failed(f"local CA {name} certificate expired on {expires:%Y-%m-%d}")
        if expires - now < CA_EXPIRY_NOTE:
            notes.append(f"{name} expires {expires:%Y-%m-%d}")
    detail = f"local CA in {where}: root and intermediate readable, keys open with the master key"
    return ("note", detail + "; " + "; ".join(notes)) if notes else ("ok", detail)


def check_acme(config) -> tuple[str, str]:
    import httpx
    c = config["ca"]
    url = c["directory"]
    try:
        with httpx.Client(timeout=c["timeout"], verify=c["ca_bundle"] or True, trust_env=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Failed(f"ACME directory {url} unreachable", f"{url}: {reason}") from None
    except (OSError, ValueError) as exc:  # an unreadable ca_bundle
        raise Failed(f"ACME directory {url} unreachable", f"ca.ca_bundle: {exc}") from None
    if response.status_code != 200:
        raise Failed(f"ACME directory {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "newOrder" not in body:
        raise Failed(f"ACME directory {url} is not an ACME directory (no newOrder)")
    return "ok", f"ACME directory {url} answers" + (" (external account binding configured)"
                                                    if c["eab_kid"] else "")


def check_ca(config, vault) -> tuple[str, str]:
    roots = check_trust_roots(config)
    kind = config["ca"]["kind"]
    if kind == "local":
        if vault is None:
            raise Skipped("local CA keys need the master key")
        status, detail = check_local_ca(config, vault)
    elif kind == "acme":
        status, detail = check_acme(config)
    else:
        status, detail = "ok", "manual: the operator records the CA's answers (certflow order issue)"
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
            if path in tested:
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


def check_notifier(config) -> tuple[str, str]:
    from adapters.base import AdapterError, BadInput, TransientError
    from workflow.wiring import notifier
    n = config["notify"]
    kind = n["kind"]
    where = {"smtp": f"smtp {n['host']}:{n['port']}", "webhook": f"webhook {n['url']}",
             "folder": f"mail folder {_rel(config, n['folder'])}"}[kind]
    try:
        notify = notifier(config)
        notify.check()
    except BadInput as exc:
        raise Failed(f"{where}: {exc.message}", f"notify.{exc.field.split('.')[-1]}: {exc.message}") from None
    except AdapterError as exc:
        verb = "unreachable" if isinstance(exc, TransientError) else "refused"
        if kind == "folder":
            verb = "not writable"
        raise Failed(f"{where} {verb}", exc.message) from None
    hint = {"smtp": "answers (EHLO, NOOP)", "webhook": "answers", "folder": "writable"}[kind]
    return "ok", f"{where} {hint}"


def check_contacts(config) -> tuple[str, str]:
    c = config["contacts"]
    done = []
    if c["whois"]:
        from adapters.common.hostport import parse_host_port
        from adapters.base import BadInput
        try:
            host, port = parse_host_port(c["whois"], "contacts.whois", 43)
            with socket.create_connection((host, port), timeout=c["timeout"]):
                pass
        except BadInput as exc:
            raise Failed(f"whois {c['whois']}: {exc.message}") from None
        except OSError as exc:
            raise Failed(f"whois {c['whois']} unreachable", f"whois {c['whois']}: "
                         f"{exc.strerror or exc}") from None
        done.append(f"whois {c['whois']}")
    if c["rdap"]:
        import httpx
        try:
            with httpx.Client(timeout=c["timeout"], verify=c["ca_bundle"] or True,
                              trust_env=False) as client:
                client.get(c["rdap"])
        except (httpx.HTTPError, OSError, ValueError) as exc:
            raise Failed(f"rdap {c['rdap']} unreachable", f"rdap {c['rdap']}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        done.append(f"rdap {c['rdap']}")
    return "ok", " and ".join(done) + " reachable"


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
